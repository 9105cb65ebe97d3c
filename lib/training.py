"""One batch and what follows it, in one place for the HTTP function and the CLI.

`train_once` dispatches the fan-out's other runs (if any), runs the batch (`lib.runner`), then
hands the finished run to `lib.followups` (the canary's look, Slack, the scout, and one write of
every error to the run's row).
"""
from __future__ import annotations

import logging
import threading

from lib.config import Settings
from lib.deadline import Deadline
from lib.followups import Scout, Trained, alert_budget_refused, follow_up, redirect_refused
from lib.llm import LLM
from lib.log import log
from lib.pause_watch import Interrupt
from lib.runner import OnProgress, RunRefused, begin_run
from lib.store import Store

__all__ = ["Trained", "dispatch_runs", "train_once"]


def train_once(settings: Settings, store: Store, llm: LLM, *, trigger: str, scout: Scout,
               requested_batch_size: int | None = None, started: float | None = None,
               on_progress: OnProgress | None = None, fan_out: int = 1,
               interrupt: Interrupt | None = None) -> Trained:
    """Runs one batch and its follow-ups. Raises `RunRefused` when the database refuses the run.

    `scout` says how the Tactical Scout hears of the batch (see `lib.followups.follow_up`):
    `"webhook"` when we are the HTTP function (the follow-ups fit before the response leaves; the
    scout-scan function is POSTed), `"in_process"` when we are the CLI (the scan runs here; its
    result comes back as `Trained.scan`).

    `started` (a `time.monotonic()` value, default now) is when the clock began; `on_progress`
    is `run_batch`'s; `interrupt` is `begin_run`'s (an interrupted run's scout scan is left to the
    next scan). `fan_out` > 1 (a Vercel Cron call with CRON_FAN_OUT) first dispatches
    `fan_out - 1` more runs to this deployment (see `dispatch_runs`), then runs its own.
    """
    if scout not in ("webhook", "in_process"):
        raise ValueError(f"scout must be 'webhook' or 'in_process', not {scout!r}")
    deadline = Deadline.for_run(settings, started)
    errors: list[str] = []
    dispatching = dispatch_runs(settings, fan_out - 1, requested_batch_size, errors)
    try:
        run = begin_run(settings, store, llm, trigger=trigger, requested_batch_size=requested_batch_size,
                        on_progress=on_progress, deadline=deadline, interrupt=interrupt)
        batch = run.execute()
    except RunRefused as refused:
        if refused.reason == "budget" and refused.outcome.get("alert"):
            alert_budget_refused(settings, store, refused)
        raise
    finally:
        # Usually long done (a dispatch takes a second or so); a target trickling its answer must
        # not hold this one past the run's deadline.
        for thread in dispatching:
            thread.join(max(0.0, deadline.left()))
        for thread in dispatching:
            if thread.is_alive():
                errors.append(f"Fan-out run {thread.name.rsplit('-', 1)[1]} of {fan_out}: no complete answer by the "
                              "run's deadline (NEXT_PUBLIC_APP_URL held the request open); it may not have started")
    return follow_up(settings, store, llm, batch, run_deadline=deadline, planned_pairs=run.planned_pairs,
                     scout=scout, errors=errors, scan=interrupt is None or not interrupt.is_set())


# A dispatched run answers within this long only when it is refused; otherwise it is running.
DISPATCH_CONNECT_S, DISPATCH_ANSWER_S = 2.0, 1.0


def dispatch_runs(settings: Settings, count: int, requested_batch_size: int | None,
                  errors: list[str]) -> list[threading.Thread]:
    """Starts `count` more runs of this deployment, each its own function invocation: a GET to
    `${NEXT_PUBLIC_APP_URL}/api/cron/train?fanOut=0` with the bearer, as Vercel Cron sends it
    (`fanOut=0`: the invocation runs one batch and dispatches nothing). Each is one thread that
    waits a second for the answer: none means the run is under way. A refusal (busy, paused,
    budget) or a failure to reach the deployment is added to `errors`. Returns the threads."""
    if count <= 0:
        return []
    if not settings.app_url:
        errors.append(f"Fan-out skipped: dispatching {count} more run{'s' if count > 1 else ''} needs "
                      "NEXT_PUBLIC_APP_URL (this deployment's URL)")
        return []
    import requests

    headers = {"Authorization": f"Bearer {settings.cron_secret}", "User-Agent": "training-fan-out"}
    if settings.bypass_secret:
        headers["x-vercel-protection-bypass"] = settings.bypass_secret
    params: dict[str, str | int] = {"fanOut": "0",
                                    **({"batchSize": requested_batch_size} if requested_batch_size else {})}
    lock = threading.Lock()

    url = f"{settings.app_url}/api/cron/train"

    def dispatch(index: int) -> None:
        try:
            # Never follow a redirect: it would carry the bearer and the bypass secret to another host.
            response = requests.get(url, params=params, headers=headers, allow_redirects=False,
                                    timeout=(DISPATCH_CONNECT_S, DISPATCH_ANSWER_S))
        except requests.ReadTimeout:
            log("fan_out_dispatched", run=index)
            return  # under way
        except requests.RequestException as exc:
            cause = type(exc).__name__
        else:
            cause = f"HTTP {response.status_code}"
            if response.status_code < 300:
                return  # it ran (a very short batch)
            if response.status_code < 400:
                cause = redirect_refused(url, response)
            else:
                try:
                    cause += f" {response.json().get('error', '')}".rstrip()
                except ValueError:
                    pass
        log("fan_out_failed", level=logging.WARNING, run=index, cause=cause)
        with lock:
            errors.append(f"Fan-out run {index} of {count + 1} did not start: {cause}")

    threads = [threading.Thread(target=dispatch, args=(index,), name=f"fan-out-{index}", daemon=True)
               for index in range(2, count + 2)]
    for thread in threads:
        thread.start()
    return threads


"""One batch and what follows it, in one place for the HTTP function and the CLI.

`train_once` runs `run_batch`, then does the follow-ups: the cost-cap alert (training is paused), the failed-run alert, the Slack batch summary (when there are breakthroughs), and the Tactical Scout (the
scout-scan webhook when serving HTTP, a scan in this process for the CLI). The run row is already
finished by then, so what the follow-ups did is written to it afterwards: `scout_notified`, and
every error they met, appended to `training_runs.errors`. The HTTP response, the CLI summary and
the row therefore list the same errors.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin, urlsplit

from lib import slack
from lib.budget import COST_CAP_REACHED
from lib.config import ConfigError
from lib.log import log
from lib.redact import redact
from lib.runner import RunRefused, run_batch
from lib.scout import scan
from lib.store import StoreError
from lib.store.queries import Queries

# After the batch, the follow-ups (Slack summary, scout webhook) share what is left of the
# deadline's extra second, and at most this long each.
FOLLOW_UP_MAX_S = 3.0
FOLLOW_UP_MIN_S = 0.3
# An HTTP response leaves at most this long after the run's deadline (vercel.json's maxDuration
# leaves room for it).
RESPONSE_MARGIN_S = 0.8

Scout = Literal["webhook", "in_process"]


@dataclass
class Trained:
    batch: dict  # the run's figures: the HTTP response's `batch` (docs/http.md)
    scan: dict | None = None  # the in-process scout scan's result, when one ran


def train_once(settings, store, llm, *, trigger: str, scout: Scout, requested_batch_size: int | None = None,
               started: float | None = None, on_progress=None, fan_out: int = 1) -> Trained:
    """Runs one batch and its follow-ups. Raises `RunRefused` when the database refuses the run.

    `scout` says how the Tactical Scout hears of the batch:

    - `"webhook"`: we are the HTTP function. The follow-ups must fit before the response leaves
      (the run's deadline plus `RESPONSE_MARGIN_S`), and the scout is the scout-scan function,
      reached by POSTing `${NEXT_PUBLIC_APP_URL}/api/cron/scout-scan` (skipped when unset: the
      scout-scan cron picks the battles up).
    - `"in_process"`: we are the CLI. There is no response to send, and the scan runs here, once
      a battle has completed; its result comes back as `Trained.scan`.

    `started` (a `time.monotonic()` value, default now) is when the clock began; `on_progress`
    is `run_batch`'s. `fan_out` > 1 (a Vercel Cron call with CRON_FAN_OUT) first dispatches
    `fan_out - 1` more runs to this deployment (see `dispatch_runs`), then runs its own.
    """
    if scout not in ("webhook", "in_process"):
        raise ValueError(f"scout must be 'webhook' or 'in_process', not {scout!r}")
    started = time.monotonic() if started is None else started
    errors: list[str] = []
    dispatching = dispatch_runs(settings, fan_out - 1, requested_batch_size, errors)
    try:
        batch = run_batch(settings, store, llm, trigger=trigger, requested_batch_size=requested_batch_size,
                          on_progress=on_progress, started=started)
    except RunRefused as refused:
        if refused.reason == "budget" and refused.outcome.get("alert"):
            _alert_budget(settings, refused)
        raise
    finally:
        # Usually long done (a dispatch takes a second or so); a target trickling its answer must
        # not hold this one past the run's deadline.
        run_deadline = started + settings.max_execution_ms / 1000
        for thread in dispatching:
            thread.join(max(0.0, run_deadline - time.monotonic()))
        for thread in dispatching:
            if thread.is_alive():
                errors.append(f"Fan-out run {thread.name.rsplit('-', 1)[1]} of {fan_out}: no complete answer by the "
                              "run's deadline (NEXT_PUBLIC_APP_URL held the request open); it may not have started")
    respond_by = started + settings.max_execution_ms / 1000 + RESPONSE_MARGIN_S if scout == "webhook" else None
    queries = Queries(store)
    if batch["killSwitchTriggered"]:
        _alert_cost_cap(settings, batch, started + settings.max_execution_ms / 1000, errors)
    if batch["status"] == "failed":
        _alert_failed(settings, batch, respond_by, errors)
    if batch["breakthroughs"]:
        _post_summary(settings, batch, respond_by, errors)
    result = None
    if scout == "webhook":
        notified = notify_scout(settings, batch, respond_by, errors)
    else:
        notified, result = _scan_here(settings, store, llm, batch, errors)
    if errors:
        batch["errors"] = queries.append_run_errors(batch["batchId"], errors, deadline=respond_by)
    batch["scoutNotified"] = notified
    queries.set_scout_notified(batch["batchId"], notified, deadline=respond_by)
    return Trained(batch, result)


def _follow_up_timeout(respond_by: float | None) -> float | None:
    """The time a follow-up may take; None when too little is left before the response leaves."""
    if respond_by is None:
        return FOLLOW_UP_MAX_S
    left = respond_by - time.monotonic()
    return min(FOLLOW_UP_MAX_S, left) if left >= FOLLOW_UP_MIN_S else None


def _cost_cap_reason(batch: dict) -> str:
    """The budget's own words, which the run recorded among its errors."""
    for error in batch["errors"]:
        if error.startswith(COST_CAP_REACHED):
            return error
    return f"{COST_CAP_REACHED}: the batch reached its ${batch['costCap']} cap"


def _alert_cost_cap(settings, batch: dict, run_deadline: float, errors: list) -> None:
    """Always logged; sent to Slack even past the deadline (at least a second): training is paused."""
    reason = _cost_cap_reason(batch)
    log("cost_cap_reached", level=logging.WARNING, runId=batch["batchId"], reason=reason)
    _tell_slack(settings, batch, slack.cost_cap_message(batch, reason, settings.app_url),
                max(1.0, min(5.0, run_deadline + 1 - time.monotonic())), "Cost cap Slack alert", errors)


def _alert_failed(settings, batch: dict, respond_by: float | None, errors: list) -> None:
    """A failed run (the provider refused, every battle failed) is said in Slack: nobody may be watching."""
    timeout = _follow_up_timeout(respond_by)
    if timeout is not None:
        _tell_slack(settings, batch, slack.run_failed_message(batch, settings.app_url), timeout,
                    "Run failure Slack alert", errors)


def _alert_budget(settings, refused) -> None:
    """The first budget refusal of a UTC day reaches Slack (the database says which one is first)."""
    message = f"{refused.error}: {refused.outcome['reason']}"
    log("budget_reached", level=logging.WARNING, reason=message)
    slack.send(settings, {"text": f":money_with_wings: {slack.escape(message)}. Training runs are refused until "
                                  "then; raise DAILY_BUDGET_USD / MONTHLY_BUDGET_USD to allow more."},
               timeout=FOLLOW_UP_MAX_S, alert="budget_reached")


def _post_summary(settings, batch: dict, respond_by: float | None, errors: list) -> None:
    timeout = _follow_up_timeout(respond_by)
    if timeout is not None:
        _tell_slack(settings, batch, slack.batch_summary_message(batch, settings.app_url), timeout,
                    "Batch summary to Slack", errors)


def _tell_slack(settings, batch: dict, payload: dict, timeout: float, what: str, errors: list) -> None:
    failure = slack.send(settings, payload, timeout=timeout, runId=batch["batchId"])
    if failure:
        errors.append(f"{what} failed: {failure}")


def notify_scout(settings, batch: dict, respond_by: float | None, errors: list) -> bool:
    """POSTs the scout webhook; a failure is logged and reported, never fatal to the batch."""
    if not settings.app_url:
        log("scout_skipped", level=logging.WARNING, runId=batch["batchId"],
            reason="NEXT_PUBLIC_APP_URL not set; the scout-scan cron will pick the battles up")
        return False
    timeout = _follow_up_timeout(respond_by)
    if timeout is None:
        return _scout_failed(batch, "no time left before the deadline", errors)
    import requests

    headers = {"Authorization": f"Bearer {settings.cron_secret}", "Content-Type": "application/json"}
    if settings.bypass_secret:
        headers["x-vercel-protection-bypass"] = settings.bypass_secret
    url = f"{settings.app_url}/api/cron/scout-scan"
    try:
        # Never follow a redirect: it would carry the bypass secret (and the body) to another host.
        response = requests.post(url, json={"runId": batch["batchId"]}, headers=headers,
                                 timeout=(min(timeout, 2.0), timeout), allow_redirects=False)
    except requests.ReadTimeout:
        return True  # delivered: the scan goes on without us waiting for it
    except requests.RequestException as exc:
        return _scout_failed(batch, type(exc).__name__, errors)
    if 300 <= response.status_code < 400:
        return _scout_failed(batch, _redirect_refused(url, response), errors)
    if response.status_code >= 400:
        return _scout_failed(batch, f"HTTP {response.status_code}", errors)
    return True


def _redirect_refused(url: str, response) -> str:
    """Why a 3xx answer is a failure, naming where it pointed (the URL to set instead)."""
    target = urlsplit(urljoin(url, response.headers.get("Location", "")))
    return (f"HTTP {response.status_code} redirect to {target.scheme}://{target.netloc}{target.path} (redirects are "
            "not followed: set NEXT_PUBLIC_APP_URL to this deployment's final URL)")


# A dispatched run answers within this long only when it is refused; otherwise it is running.
DISPATCH_CONNECT_S, DISPATCH_ANSWER_S = 2.0, 1.0


def dispatch_runs(settings, count: int, requested_batch_size: int | None, errors: list) -> list[threading.Thread]:
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
    params = {"fanOut": "0", **({"batchSize": requested_batch_size} if requested_batch_size else {})}
    lock = threading.Lock()

    url = f"{settings.app_url}/api/cron/train"

    def dispatch(index: int) -> None:
        try:
            # Never follow a redirect: it would carry the bearer and the bypass secret to another host.
            response = requests.get(url, params=params, headers=headers, timeout=(DISPATCH_CONNECT_S, DISPATCH_ANSWER_S),
                                    allow_redirects=False)
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
                cause = _redirect_refused(url, response)
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


def _scout_failed(batch: dict, cause: str, errors: list) -> bool:
    cause = redact(cause)
    errors.append(f"Failed to notify Tactical Scout: {cause}")
    log("scout_notify_failed", level=logging.WARNING, runId=batch["batchId"], cause=cause)
    return False


def _scan_here(settings, store, llm, batch: dict, errors: list) -> tuple[bool, dict | None]:
    """The CLI's scout: one scan in this process, once a battle has completed."""
    if not batch["battlesCompleted"]:
        return False, None
    try:
        return True, scan(settings, store, llm, deadline=time.monotonic() + settings.max_execution_ms / 1000)
    except (ConfigError, StoreError) as exc:  # the batch is done and recorded; say why the scan is not
        errors.append(f"Scout scan failed: {exc}")
        log("scout_scan_failed", level=logging.WARNING, runId=batch["batchId"], error=type(exc).__name__)
        return False, None

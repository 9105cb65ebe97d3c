"""Everything after a run, in one place: the canary's look, every Slack message, the scout.

`run_batch` ends when `Queries.finish_run` has recorded the run's figures. `follow_up` then does,
in order: the canary's look (read the pairs, `lib.canary.decide`, record it, post a decision to
Slack), the autonomous loop's step (`lib.proposals.after_run`: the proposal queue), the cost-cap
alert (training is paused), the failed-run alert, the batch summary (when there are breakthroughs),
and the Tactical Scout (the scout-scan webhook when serving HTTP, a scan in this process for the
CLI). None of them fails the batch: each failure becomes an error, and all of
them (with any the caller met, such as a fan-out refusal) are appended to the run's row in ONE
`append_run_errors`, whose answer becomes the batch's `errors`. The HTTP response, the CLI summary
and the row therefore list the same errors (unless the store stays down for that write: then the
batch carries them, and the log).
"""
from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urljoin, urlsplit

from lib import canary, proposals, slack
from lib.budget import COST_CAP_REACHED
from lib.canary_verdicts import judge_new_pairs
from lib.config import ConfigError, Settings
from lib.deadline import Deadline
from lib.head_to_head import HEAD_TO_HEAD_BETS
from lib.llm import LLM
from lib.log import log
from lib.redact import redact
from lib.runner import RunRefused
from lib.scout import scan
from lib.store import JSONObject, Store, StoreError
from lib.store.queries import BatchSummary, Queries

if TYPE_CHECKING:
    import requests  # imported where a request is made: a cold start needs none

# The follow-ups share what is left before the response leaves, at most this long each, and are
# skipped when less than FOLLOW_UP_MIN_S is left.
FOLLOW_UP_MAX_S = 3.0
FOLLOW_UP_MIN_S = 0.3
# An HTTP response leaves at most this long after the run's deadline (vercel.json's maxDuration
# leaves room for it).
RESPONSE_MARGIN_S = 0.8
# Alerts that say training changed (cost cap reached, canary decided) go out even past the deadline,
# in at most this long (lib.deadline's WRITE_GRACE_S at least).
ALERT_MAX_S = 5.0

Scout = Literal["webhook", "in_process"]


@dataclass
class Trained:
    batch: BatchSummary  # the run's figures: the HTTP response's `batch` (docs/http.md)
    scan: JSONObject | None = None  # the in-process scout scan's result, when one ran


def follow_up(settings: Settings, store: Store, llm: LLM, batch: BatchSummary, *, run_deadline: Deadline,
              planned_pairs: int, scout: Scout, errors: list[str], scan: bool = True) -> Trained:
    """Does the work after a finished run (see the module's docstring) and returns the batch with
    its `canary`, `scoutNotified` and every error. `errors` are the caller's, saved with the rest.

    `scout == "webhook"`: we are the HTTP function; the follow-ups fit before the response leaves
    (`run_deadline` plus RESPONSE_MARGIN_S). `"in_process"`: we are the CLI; nothing waits, and the
    scan runs here once a battle has completed, unless `scan` is false (the person stopped the run:
    the next scan picks its battles up).
    """
    respond_by = run_deadline.extended(RESPONSE_MARGIN_S) if scout == "webhook" else Deadline.none()
    batch["canary"] = look_at_canary(settings, store, llm, batch, run_deadline, planned_pairs, errors)
    # The autonomous loop's step (the proposer, the queue, the next candidate), after the look.
    proposals.after_run(settings, store, llm, run_deadline=run_deadline, respond_by=respond_by,
                        simulated=batch["simulated"], errors=errors)
    if batch["costCapReached"]:
        _alert_cost_cap(settings, batch, run_deadline, errors)
    if batch["status"] == "failed":
        _tell_slack(settings, batch, slack.run_failed_message(batch, settings.app_url), respond_by,
                    "Run failure Slack alert", errors)
    if batch["breakthroughs"]:
        _tell_slack(settings, batch, slack.batch_summary_message(batch, settings.app_url), respond_by,
                    "Batch summary to Slack", errors)
    result: JSONObject | None = None
    if scout == "webhook":
        notified = notify_scout(settings, batch, respond_by, errors)
    elif scan:
        notified, result = _scan_here(settings, store, llm, batch, errors)
    else:
        notified = False
    batch["scoutNotified"] = notified
    _save_follow_ups(store, batch, errors, notified, respond_by)
    return Trained(batch, result)


def _save_follow_ups(store: Store, batch: BatchSummary, errors: list[str], notified: bool,
                     respond_by: Deadline) -> None:
    """Appends the errors to the run's row and records whether the scout heard. `respond_by` is
    usually past by now: the writes get WRITE_GRACE_S to retry a brief outage. The run itself is
    recorded already, so a store that stays down costs only these two writes: logged, and the batch
    still carries every error."""
    writes_by = None if respond_by.bounded is None else respond_by.for_writes()
    queries = Queries(store)
    try:
        if errors:
            batch["errors"] = queries.append_run_errors(batch["runId"], errors, deadline=writes_by)
            errors = []
        queries.set_scout_notified(batch["runId"], notified, deadline=writes_by)
    except StoreError as exc:
        log("follow_ups_not_saved", level=logging.WARNING, runId=batch["runId"], error=type(exc).__name__,
            detail=str(exc), unsaved=errors)
        unsaved = "; the errors above are in this answer and the log only" if errors else ""
        failure = f"Saving the follow-ups to the run failed: {type(exc).__name__}: {redact(str(exc))}{unsaved}"
        batch["errors"] = [*batch["errors"], *errors, failure]


def look_at_canary(settings: Settings, store: Store, llm: LLM, batch: BatchSummary, run_deadline: Deadline,
                   planned_pairs: int, errors: list[str]) -> JSONObject | None:
    """The canary's look after the run (pairs, figures, maybe a decision): what the batch's `canary`
    shows, None without a candidate. Never fails the run: the pairs stay in the battle rows, and
    the next run's look counts them."""
    try:
        look = _review(settings, store, llm, run_deadline, simulated=batch["simulated"], errors=errors)
    except Exception as exc:
        errors.append(f"Canary look failed: {type(exc).__name__}: {exc}")
        log("canary_failed", level=logging.WARNING, runId=batch["runId"], error=str(exc))
        return None
    if look is not None:
        look["plannedPairs"] = planned_pairs
        if not planned_pairs:
            look["note"] = ("no pairs this run: a run pairs floor(batch size × CANARY_SHARE) personas, so use a "
                            "batch of 2 or more")
    return look


def _review(settings: Settings, store: Store, llm: LLM, run_deadline: Deadline, *, simulated: bool,
            errors: list[str]) -> JSONObject | None:
    queries = Queries(store)
    pairs = queries.canary_pairs(settings.canary_verdict, deadline=run_deadline.for_writes())
    if pairs is None:
        return None
    # The canary's own unit: CANARY_VERDICT at its first look, kept for the rest of it (a unit
    # chosen again after seeing the pairs would be a second test on the same pairs).
    unit = pairs["unit"]
    if unit == "head_to_head":  # what is left of the run's time, and at least as long as a decision's alert
        judged = judge_new_pairs(settings, store, llm, judge_by=max(run_deadline.at, time.monotonic() + ALERT_MAX_S),
                                 simulated=simulated, errors=errors)
        if judged:
            first = pairs["candidateId"]
            pairs = queries.canary_pairs(unit, deadline=run_deadline.for_writes())
            if pairs is None or pairs["candidateId"] != first:  # decided or withdrawn meanwhile
                return None
    writes_by = run_deadline.for_writes()
    # A verdict reads as ±100 (0 a tie): the same rule and bound as points, with the verdicts' stakes.
    look = canary.decide(pairs["diffs"], settings.canary_max_pairs,
                         bets=HEAD_TO_HEAD_BETS if unit == "head_to_head" else canary.BETS)
    rounded = None if look.diff is None else round(look.diff, 2)
    # Rounded outward: a wider interval is still a valid one.
    ci95 = None if look.ci95 is None else [math.floor(look.ci95[0] * 100) / 100, math.ceil(look.ci95[1] * 100) / 100]
    outcome = queries.record_canary(pairs["candidateId"], look.decision, look.pairs, rounded, ci95,
                                    settings.canary_max_pairs, look_id=str(uuid.uuid4()), unit=unit,
                                    deadline=writes_by)
    summary: JSONObject = {"candidateId": pairs["candidateId"], "activeId": pairs["activeId"], "pairs": look.pairs,
               "maxPairs": settings.canary_max_pairs, "diff": rounded, "ci95": ci95, "unit": unit,
               "decision": look.decision if outcome["recorded"] else "superseded"}
    skipped = pairs.get("skipped", 0) + look.skipped
    if skipped:  # unscored or non-finite pairs never reach the decision: say how many and why
        summary["skipped"] = skipped
        summary["skippedReason"] = pairs.get("skippedReason") or "a difference that is not a finite number"
        log("canary_pairs_skipped", level=logging.WARNING, candidateId=pairs["candidateId"], skipped=skipped,
            reason=summary["skippedReason"])
    if outcome.get("decided"):
        log("canary_decided", candidateId=pairs["candidateId"], decision=look.decision, pairs=look.pairs,
            diff=rounded)
        summary["message"] = outcome["message"]
        failure = slack.send(settings, slack.canary_decision_message(outcome, settings.app_url, simulated, unit),
                             timeout=run_deadline.for_alert(ALERT_MAX_S), candidateId=pairs["candidateId"])
        if failure:
            errors.append(f"Canary decision to Slack failed: {failure} ({outcome['message']})")
    return summary


def _cost_cap_reason(batch: BatchSummary) -> str:
    """The budget's own words, which the run recorded among its errors."""
    for error in batch["errors"]:
        if error.startswith(COST_CAP_REACHED):
            return error
    return f"{COST_CAP_REACHED}: the batch reached its ${batch['costCap']} cap"


def _alert_cost_cap(settings: Settings, batch: BatchSummary, run_deadline: Deadline, errors: list[str]) -> None:
    """Always logged; sent to Slack even past the deadline: training is paused."""
    reason = _cost_cap_reason(batch)
    log("cost_cap_reached", level=logging.WARNING, runId=batch["runId"], reason=reason)
    failure = slack.send(settings, slack.cost_cap_message(batch, reason, settings.app_url),
                         timeout=run_deadline.for_alert(ALERT_MAX_S), runId=batch["runId"])
    if failure:
        errors.append(f"Cost cap Slack alert failed: {failure}")


def alert_budget_refused(settings: Settings, store: Store, refused: RunRefused) -> None:
    """The first budget refusal of a UTC day reaches Slack (the database says which one is first,
    and is told to forget it when Slack did not take the message, so a later refusal tries again)."""
    message = f"{refused.error}: {refused.outcome['reason']}"
    log("budget_reached", level=logging.WARNING, reason=message)
    failure = slack.send(settings, {"text": f":money_with_wings: {slack.escape(message)}. Training runs are refused "
                                            "until then; raise DAILY_BUDGET_USD / MONTHLY_BUDGET_USD to allow more."},
                         timeout=FOLLOW_UP_MAX_S, alert="budget_reached")
    if failure:
        try:
            Queries(store).forget_budget_alert()
        except StoreError as exc:
            log("budget_alert_not_reset", level=logging.WARNING, error=type(exc).__name__, detail=str(exc))


def _tell_slack(settings: Settings, batch: BatchSummary, payload: slack.Payload, respond_by: Deadline, what: str,
                errors: list[str]) -> None:
    timeout = respond_by.for_follow_up(FOLLOW_UP_MAX_S, FOLLOW_UP_MIN_S)
    if timeout is None:
        return
    failure = slack.send(settings, payload, timeout=timeout, runId=batch["runId"])
    if failure:
        errors.append(f"{what} failed: {failure}")


def notify_scout(settings: Settings, batch: BatchSummary, respond_by: Deadline, errors: list[str]) -> bool:
    """POSTs the scout webhook; a failure is logged and reported, never fatal to the batch."""
    if not settings.app_url:
        log("scout_skipped", level=logging.WARNING, runId=batch["runId"],
            reason="NEXT_PUBLIC_APP_URL not set; the scout-scan cron will pick the battles up")
        return False
    timeout = respond_by.for_follow_up(FOLLOW_UP_MAX_S, FOLLOW_UP_MIN_S)
    if timeout is None:
        return _scout_failed(batch, "no time left before the deadline", errors)
    import requests

    headers = {"Authorization": f"Bearer {settings.cron_secret}", "Content-Type": "application/json"}
    if settings.bypass_secret:
        headers["x-vercel-protection-bypass"] = settings.bypass_secret
    url = f"{settings.app_url}/api/cron/scout-scan"
    try:
        # Never follow a redirect: it would carry the bypass secret (and the body) to another host.
        response = requests.post(url, json={"runId": batch["runId"]}, headers=headers,
                                 timeout=(min(timeout, 2.0), timeout), allow_redirects=False)
    except requests.ReadTimeout:
        return True  # delivered: the scan goes on without us waiting for it
    except requests.RequestException as exc:
        return _scout_failed(batch, type(exc).__name__, errors)
    if 300 <= response.status_code < 400:
        return _scout_failed(batch, redirect_refused(url, response), errors)
    if response.status_code >= 400:
        return _scout_failed(batch, f"HTTP {response.status_code}", errors)
    return True


def redirect_refused(url: str, response: requests.Response) -> str:
    """Why a 3xx answer is a failure (we never follow one), naming where it pointed: the URL to set."""
    target = urlsplit(urljoin(url, response.headers.get("Location", "")))
    return (f"HTTP {response.status_code} redirect to {target.scheme}://{target.netloc}{target.path} (redirects are "
            "not followed: set NEXT_PUBLIC_APP_URL to this deployment's final URL)")


def _scout_failed(batch: BatchSummary, cause: str, errors: list[str]) -> bool:
    cause = redact(cause)
    errors.append(f"Failed to notify Tactical Scout: {cause}")
    log("scout_notify_failed", level=logging.WARNING, runId=batch["runId"], cause=cause)
    return False


def _scan_here(settings: Settings, store: Store, llm: LLM, batch: BatchSummary,
               errors: list[str]) -> tuple[bool, JSONObject | None]:
    """The CLI's scout: one scan in this process, once a battle has completed."""
    if not batch["battlesCompleted"]:
        return False, None
    try:
        return True, scan(settings, store, llm, deadline=Deadline.for_run(settings).at)
    except (ConfigError, StoreError) as exc:  # the batch is done and recorded; say why the scan is not
        errors.append(f"Scout scan failed: {exc}")
        log("scout_scan_failed", level=logging.WARNING, runId=batch["runId"], error=type(exc).__name__)
        return False, None

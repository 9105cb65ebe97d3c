"""What the HTTP functions do, behind the shared plumbing of `lib.http`.

Heavy modules (the runner, `openai`, `psycopg`, `requests`) are imported here, inside the
functions, only once a request has passed authentication.
"""
from __future__ import annotations

import json
import logging
import time

from lib.http import ApiError, Request
from lib.log import log

# After the batch, the follow-ups (Slack summary, scout webhook) share what is left of the
# deadline's extra second, and at most this long each.
FOLLOW_UP_MAX_S = 3.0
FOLLOW_UP_MIN_S = 0.3


def parse_batch_size(request: Request) -> int | None:
    """`?batchSize=` on GET, `{"batchSize": n}` on POST; None means the configured default."""
    if request.method == "GET":
        raw = request.query.get("batchSize")
        if raw is None or raw == "":
            return None
        if not raw.strip().isdigit() or int(raw) < 1:
            raise ApiError(400, {"error": f"batchSize must be a positive integer, got {raw[:40]!r}"})
        return int(raw)
    body = request.json_object()
    if "batchSize" not in body or body["batchSize"] is None:
        return None
    value = body["batchSize"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, {"error": f"batchSize must be a positive integer, got {json.dumps(value)[:40]}"})
    return value


def _open(settings):
    from lib.app import make_llm
    from lib.app import open_store

    llm = make_llm(settings)  # a missing key fails before the database is touched
    return open_store(settings), llm


def train(request: Request) -> tuple[int, dict]:
    from lib.config import Settings
    from lib.runner import RunRefused, run_batch
    from lib.store.queries import Queries

    requested = parse_batch_size(request)
    settings = Settings.from_env()
    store, llm = _open(settings)
    try:
        try:
            batch = run_batch(settings, store, llm, trigger="cron" if request.method == "GET" else "manual",
                              requested_batch_size=requested, started=request.arrived)
        except RunRefused as refused:
            raise ApiError(*_refusal(refused)) from None
        response_deadline = request.arrived + settings.max_execution_ms / 1000 + 0.8
        if batch["breakthroughs"] and settings.slack_webhook_url:
            _post_summary(settings, batch, response_deadline)
        batch["scoutNotified"] = notify_scout(settings, batch, response_deadline)
        Queries(store).set_scout_notified(batch["batchId"], batch["scoutNotified"], deadline=response_deadline)
    finally:
        store.close()
    message = (f"Training batch {batch['status']}: {batch['battlesCompleted']} of {batch['battlesStarted']} "
               f"battles completed, ${batch['totalCost']} spent")
    return 200, {"success": True, "message": message, "batch": batch}


def _refusal(refused) -> tuple[int, dict]:
    """The status and body for a refused run; the wording is RunRefused's, shared with the CLI."""
    outcome = refused.outcome
    if refused.reason == "paused":
        return 503, {"error": refused.error, "killSwitchActive": True,
                     "message": f"{outcome.get('reason') or 'paused'} ({refused.hint})"}
    if refused.reason == "busy":
        return 409, {"error": refused.error, "runId": outcome["runId"]}
    status = 422 if refused.reason == "no_personas" else 409
    return status, {"error": refused.error, "message": refused.hint}


def _follow_up_timeout(deadline: float) -> float | None:
    left = deadline - time.monotonic()
    return min(FOLLOW_UP_MAX_S, left) if left >= FOLLOW_UP_MIN_S else None


def _post_summary(settings, batch: dict, deadline: float) -> None:
    from lib import slack

    timeout = _follow_up_timeout(deadline)
    if timeout is None:
        return
    try:
        slack.post(settings.slack_webhook_url, slack.batch_summary_message(batch, settings.app_url), timeout)
    except slack.SlackError as exc:
        batch["errors"].append(f"Batch summary to Slack failed: {exc}")


def notify_scout(settings, batch: dict, deadline: float) -> bool:
    """POSTs the scout webhook; a failure is logged and reported, never fatal to the batch."""
    if not settings.app_url:
        log("scout_skipped", level=logging.WARNING, runId=batch["batchId"],
            reason="NEXT_PUBLIC_APP_URL not set; the scout-scan cron will pick the battles up")
        return False
    timeout = _follow_up_timeout(deadline)
    if timeout is None:
        return _scout_failed(batch, "no time left before the deadline")
    import requests

    headers = {"Authorization": f"Bearer {settings.cron_secret}", "Content-Type": "application/json"}
    if settings.bypass_secret:
        headers["x-vercel-protection-bypass"] = settings.bypass_secret
    try:
        response = requests.post(f"{settings.app_url}/api/cron/scout-scan", json={"runId": batch["batchId"]},
                                 headers=headers, timeout=(min(timeout, 2.0), timeout))
    except requests.ReadTimeout:
        return True  # delivered: the scan goes on without us waiting for it
    except requests.RequestException as exc:
        return _scout_failed(batch, type(exc).__name__)
    if response.status_code >= 300:
        return _scout_failed(batch, f"HTTP {response.status_code}")
    return True


def _scout_failed(batch: dict, cause: str) -> bool:
    message = f"Failed to notify Tactical Scout: {cause}"
    batch["errors"].append(message)
    log("scout_notify_failed", level=logging.WARNING, runId=batch["batchId"], cause=cause)
    return False


def scout_scan(request: Request) -> tuple[int, dict]:
    from lib import scout
    from lib.config import Settings

    settings = Settings.from_env()
    store, llm = _open(settings)
    try:
        result = scout.scan(settings, store, llm, deadline=request.arrived + settings.max_execution_ms / 1000)
    finally:
        store.close()
    return 200, {"success": True, **result}

"""What the HTTP functions do, behind the shared plumbing of `lib.http`.

The handlers import this module only once a request has passed authentication, so its imports
never slow a 401; `openai`, `psycopg` and `requests` still load only where they are first used.
"""
from __future__ import annotations

from lib.app import make_llm, open_store
from lib.config import Settings
from lib.deadline import Deadline
from lib.http import ApiError, Request, body_positive_int, query_positive_int
from lib.llm import LLM
from lib.runner import RunRefused
from lib.scout import scan
from lib.store import JSONObject, Store
from lib.training import train_once


def parse_batch_size(request: Request) -> int | None:
    """`?batchSize=` on GET, `{"batchSize": n}` on POST; None means the configured default.

    Any positive size is accepted here; the run clamps it to MAX_TRAINING_BATCH_SIZE.
    """
    if request.method == "GET":
        return query_positive_int(request, "batchSize")
    return body_positive_int(request.json_object(), "batchSize")


def _open(settings: Settings) -> tuple[Store, LLM]:
    llm = make_llm(settings)  # a missing key fails before the database is touched
    return open_store(settings), llm


def train(request: Request) -> tuple[int, JSONObject]:
    requested = parse_batch_size(request)
    settings = Settings.from_env()
    llm = make_llm(settings)  # a missing key fails before the database is touched
    llm.warm_up()  # the SDK's import overlaps the database work below
    store = open_store(settings)
    try:
        batch = train_once(settings, store, llm, trigger="cron" if request.method == "GET" else "manual",
                           scout="webhook", requested_batch_size=requested, started=request.arrived,
                           fan_out=_fan_out(request, settings)).batch
    except RunRefused as refused:
        status, body = _refusal(refused)
        headers = {"Retry-After": str(refused.outcome["retryAfterS"])} if refused.reason == "budget" else None
        raise ApiError(status, body, headers) from None
    finally:
        store.close()
    message = (f"Training batch {batch['status']}: {batch['battlesCompleted']} of {batch['battlesStarted']} "
               f"battles completed, ${batch['totalCost']} spent")
    return 200, {"success": True, "message": message, "batch": batch}


def _fan_out(request: Request, settings: Settings) -> int:
    """How many runs this call starts: CRON_FAN_OUT for Vercel Cron's GET, one for a manual POST
    and for the runs it dispatches (`?fanOut=0`)."""
    if request.method != "GET" or request.query.get("fanOut") == "0":
        return 1
    return settings.cron_fan_out


def _refusal(refused: RunRefused) -> tuple[int, JSONObject]:
    """The status and body for a refused run; the wording is RunRefused's, shared with the CLI."""
    outcome = refused.outcome
    if refused.reason == "paused":
        return 503, {"error": refused.error, "killSwitchActive": outcome.get("pausedBy") == "cost_cap",
                     "message": f"{outcome.get('reason') or 'paused'} ({refused.hint})"}
    if refused.reason == "busy":
        return 409, {"error": refused.error, "runId": outcome["runId"]}
    if refused.reason == "budget":
        return 429, {"error": refused.error, "message": f"{refused.error}: {outcome['reason']}",
                     "budget": {"day": outcome["day"], "month": outcome["month"]}}
    status = 422 if refused.reason == "no_personas" else 409
    return status, {"error": refused.error, "message": refused.hint}


def scout_scan(request: Request) -> tuple[int, JSONObject]:
    settings = Settings.from_env()
    store, llm = _open(settings)
    try:
        result = scan(settings, store, llm, deadline=Deadline.for_run(settings, request.arrived).at)
    finally:
        store.close()
    return 200, {"success": True, **result}

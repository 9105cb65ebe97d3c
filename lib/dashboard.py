"""The training monitor: one HTML page and the JSON it polls, behind HTTP Basic.

Reads are `GET ?view=…`; every state change is `POST ?action=…` with a JSON body, refused
unless `Origin` (or `Referer`) names this host, so a cross-site form cannot promote or resume
anything. The page is self-contained (no CDN, font or external script) under a strict CSP whose
nonce changes per response. Its script is one file per panel under `static/panels/`, joined here
into one inline script.

A warm function keeps its database connection between requests (`_store`): the page polls the
feed and the health strip every 2 seconds.
"""
from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from lib import dashboard_autonomy, referee
from lib.app import open_store
from lib.battle import closer_system_prompt
from lib.config import VERCEL_JSON, Database, Settings, admin_password
from lib.cron import cron_matches
from lib.http import Answer, ApiError, Body, Page, Request
from lib.store import Rejected, Store
from lib.store.queries import MAX_VERSION_ID, PauseState, Queries, ReviewStatus, VersionChange, VersionList
from lib.store.views import FeedPage, RefereeReport
from lib.text import unstorable

STATIC = Path(__file__).resolve().parent / "static"
REALM = 'Basic realm="Training monitor", charset="UTF-8"'
# Every active tactic goes into every closer prompt: a long one multiplies the cost of every
# battle. The same limit is a check on sandbox_tactics (lib/sql/schema.sql).
MAX_TACTIC_CHARS = 1000
# The feed's cursor, as PostgreSQL writes a timestamptz in JSON: 2026-11-28T14:30:00.123456+00:00
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?")
# The page's script, in order: shared helpers, one file per panel, then the loop that drives them.
SCRIPTS = ("core.js", "panels/banner.js", "panels/health.js", "panels/feed.js", "panels/review.js", "panels/runs.js",
           "panels/personas.js", "panels/versions.js", "panels/tactics.js", "panels/autonomy.js", "panels/referee.js",
           "main.js")
# PostgreSQL refuses a time zone offset of 16 hours or more ("time zone displacement out of range").
MAX_UTC_OFFSET = timedelta(hours=16)
# A request's query string, one value per name.
type Query = Mapping[str, str]
RANGES = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30}
TRAIN_PATH = "/api/cron/train"


def require_admin(request: Request) -> None:
    password = admin_password()
    if password is None:
        raise ApiError(503, {"error": "Dashboard disabled",
                             "message": "ADMIN_PASSWORD is not set; set it to enable the training monitor"})
    scheme, _, encoded = (request.headers.get("Authorization") or "").partition(" ")
    supplied = b""
    if scheme.lower() == "basic":
        try:
            supplied = base64.b64decode(encoded.strip(), validate=True).partition(b":")[2]
        except ValueError:
            supplied = b""
    if not hmac.compare_digest(supplied, password.encode()):
        raise ApiError(401, {"error": "Unauthorized"}, {"WWW-Authenticate": REALM})


def require_same_origin(request: Request) -> None:
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    host = (request.headers.get("X-Forwarded-Host") or request.headers.get("Host") or "").lower()
    if not source or not host or urlsplit(source).netloc.lower() != host:
        raise ApiError(403, {"error": "Forbidden", "message": "cross-site request refused"})


def script() -> str:
    """The panels' files as one script; they share the helpers of core.js inside one closure."""
    parts = [f"// ---- {name} ----\n{(STATIC / name).read_text()}" for name in SCRIPTS]
    return '"use strict";\n(() => {\n' + "\n".join(parts) + "\n})();\n"


def page() -> Page:
    nonce = secrets.token_urlsafe(18)
    html = ((STATIC / "dashboard.html").read_text()
            .replace("{{css}}", (STATIC / "dashboard.css").read_text())
            .replace("{{js}}", script())
            .replace("{{nonce}}", nonce))
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return Page(html, {"Content-Security-Policy": csp, "Referrer-Policy": "same-origin",
                       "X-Frame-Options": "DENY", "Cache-Control": "no-store"})


def _uuid_arg(value: object, name: str, what: str = "a battle id") -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ApiError(400, {"error": f"{name} must be {what} (a UUID)"}) from None


def _version_arg(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, {"error": f"{name} must be a version number (a positive integer)"})
    if value > MAX_VERSION_ID:
        raise ApiError(400, {"error": f"{name} {value} is past the largest version number ({MAX_VERSION_ID}): "
                                      "no such version"})
    return int(value)


def _storable_arg(value: str, name: str) -> str:
    problem = unstorable(value)
    if problem:
        raise ApiError(400, {"error": f"{name} {problem}"})
    return value


def _flag(body: Body, name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(400, {"error": f"{name} must be true or false"})
    return value


def _timestamp_arg(value: str | None, name: str) -> str | None:
    """An ISO 8601 timestamp (the feed's cursor), passed on as it came; absent or empty is None."""
    if not value:
        return None
    try:
        if not _TIMESTAMP.fullmatch(value):
            raise ValueError(value)
        offset = datetime.fromisoformat(value).utcoffset()  # the ranges: no month 13
        if offset is not None and abs(offset) >= MAX_UTC_OFFSET:
            raise ValueError(value)
    except ValueError:
        raise ApiError(400, {"error": f"{name} must be an ISO 8601 timestamp (the cursor the feed returned), "
                                      f"got {value[:40]!r}"}) from None
    return value


def _tactic_arg(value: object) -> str | None:
    """The edited tactic: absent or null means the breakthrough's own snippet."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, {"error": "tacticText must be a string"})
    _storable_arg(value, "tacticText")
    if not value.strip():
        raise ApiError(400, {"error": "tacticText is empty: write the tactic, or leave it out to use the snippet"})
    if len(value) > MAX_TACTIC_CHARS:
        raise ApiError(400, {"error": f"tacticText is {len(value)} characters long: the limit is {MAX_TACTIC_CHARS}"})
    return value


def _feed(queries: Queries, query: Query, settings: Settings) -> FeedPage:
    after_id = query.get("afterId")
    return queries.feed(_timestamp_arg(query.get("afterUpdatedAt"), "afterUpdatedAt"),
                        _uuid_arg(after_id, "afterId") if after_id else None)


# ---- the schedule: when vercel.json's cron next calls the train function -------------------------

_schedule_cache: dict[tuple[str, datetime], str | None] = {}


def next_scheduled_run(now: datetime) -> dict[str, str | None] | None:
    """`{"schedule", "at"}` for the train cron in vercel.json (UTC, as Vercel Cron runs), or None
    when there is no such cron or file. `at` is None if it is more than 8 days away."""
    try:
        crons = json.loads(VERCEL_JSON.read_text()).get("crons", [])
    except (OSError, ValueError):
        return None
    schedule = next((c.get("schedule") for c in crons if c.get("path") == TRAIN_PATH), None)
    if not schedule:
        return None
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    key = (schedule, minute)
    if key not in _schedule_cache:
        moment, at = minute + timedelta(minutes=1), None
        for _ in range(8 * 24 * 60):
            if cron_matches(schedule, moment):
                at = moment.isoformat()
                break
            moment += timedelta(minutes=1)
        _schedule_cache.clear()
        _schedule_cache[key] = at
    return {"schedule": schedule, "at": _schedule_cache[key]}


# ---- views ---------------------------------------------------------------------------------------

def _health(queries: Queries, query: Query, settings: Settings) -> Body:
    health = queries.dashboard_health()
    budget = {period: {"limit": float(limit)} for period, limit in
              (("day", getattr(settings, "daily_budget_usd", None)),
               ("month", getattr(settings, "monthly_budget_usd", None))) if limit is not None}
    # The day as the budget counts it: recorded, and what the provider may have billed beyond it.
    day = queries.budget_state()["day"]
    health["today"].update(billedUpTo=day["billedUpTo"], billingNote=day.get("note"))
    return {**health, "costCap": float(settings.cost_cap_usd), "budget": budget or None,
            "nextRun": next_scheduled_run(datetime.now(UTC))}


def _runs(queries: Queries, query: Query, settings: Settings) -> Body:
    name = query.get("range") or "7d"
    if name not in RANGES:
        raise ApiError(400, {"error": f"range must be one of {', '.join(RANGES)}"})
    return {**queries.dashboard_runs(RANGES[name]), "range": name, "costCap": float(settings.cost_cap_usd)}


def _referee(queries: Queries, query: Query, settings: Settings) -> RefereeReport:
    """`{"consistency", "precision", "unconfirmed", "calibration"}`: the Referee panel."""
    return queries.referee_report(settings.scout_threshold, referee.CONSISTENCY_DAYS, referee.PRECISION_DAYS,
                                  referee.PRECISION_MIN_DECISIONS)


def _versions(queries: Queries, query: Query, settings: Settings) -> VersionList:
    return queries.versions(settings.canary_max_pairs, settings.canary_verdict)


def _tactics(queries: Queries, query: Query, settings: Settings) -> Body:
    """The active version's tactics and the closer prompt they make (the base prompt as recorded by
    the last run, or CLOSER_PROMPT_PATH's before any)."""
    active = queries.tactics()
    base = active["basePrompt"] or settings.closer_prompt_path.read_text()
    prompt = closer_system_prompt(base, [{"tactic_text": t["text"]} for t in active["tactics"]])
    return {"tactics": active["tactics"], "promptPreview": prompt, "versionId": active["versionId"]}


# Each view answers `?view=<name>` from (queries, the query string, the settings); None is a 404.
VIEWS: dict[str, Callable[[Queries, Query, Settings], Answer | None]] = {
    "health": _health,
    "feed": _feed,
    "battle": lambda queries, query, settings: queries.battle(_uuid_arg(query.get("id"), "id")),
    "breakthroughs": lambda queries, query, settings: queries.breakthroughs(),
    "personas": lambda queries, query, settings: queries.persona_analytics(),
    "runs": _runs,
    "referee": _referee,
    "versions": _versions,
    "tactics": _tactics,
    **dashboard_autonomy.VIEWS,
}

def _promote(queries: Queries, body: Body) -> VersionChange:
    return queries.promote_breakthrough(_uuid_arg(body.get("battleId"), "battleId"),
                                        _tactic_arg(body.get("tacticText")), _flag(body, "direct"))


def _deactivate(queries: Queries, body: Body) -> VersionChange:
    return queries.deactivate_tactic(_uuid_arg(body.get("tacticId"), "tacticId", "a tactic id"), _flag(body, "direct"))


def _edit(queries: Queries, body: Body) -> VersionChange:
    text = _tactic_arg(body.get("tacticText"))
    if text is None:
        raise ApiError(400, {"error": "tacticText is required"})
    return queries.edit_tactic(_uuid_arg(body.get("tacticId"), "tacticId", "a tactic id"), text, _flag(body, "direct"))


def _pause(queries: Queries, body: Body) -> PauseState:
    reason = _storable_arg(str(body.get("reason") or ""), "reason").strip()[:500]
    if not reason:
        raise ApiError(400, {"error": "A pause needs a reason"})
    return queries.set_paused(True, f"{reason} (dashboard)")


# Each action answers `POST ?action=<name>` from (queries, the JSON body).
ACTIONS: dict[str, Callable[[Queries, Body], object]] = {
    "promote": _promote,
    "deactivate": _deactivate,
    "edit": _edit,
    "rollback": lambda queries, body: queries.rollback(_version_arg(body.get("versionId"), "versionId"),
                                                       _flag(body, "force")),
    "review": lambda queries, body: queries.set_review_status(_uuid_arg(body.get("battleId"), "battleId"),
                                                              ReviewStatus.REVIEWED),
    "reject": lambda queries, body: queries.set_review_status(_uuid_arg(body.get("battleId"), "battleId"),
                                                              ReviewStatus.REJECTED),
    "pause": _pause,
    "resume": lambda queries, body: queries.set_paused(False),
    **dashboard_autonomy.ACTIONS,
}


def _act(queries: Queries, action: str, body: Body) -> object:
    if action not in ACTIONS:
        raise ApiError(400, {"error": f"Unknown action {action[:40]!r}"})
    return ACTIONS[action](queries, body)


# ---- the connection a warm function keeps ----------------------------------------------------------

_store_lock = threading.Lock()
_stores: dict[Database, Store] = {}


def _store(settings: Settings) -> tuple[Store, bool]:
    """The store for these settings, opened once per process and kept. Returns (store, close_after):
    the embedded server is the exception, started and stopped per request (only the CLI uses it;
    `serve` points the handlers at one it started itself)."""
    database = settings.require_database()
    if database.kind == "embedded":
        return open_store(settings), True
    with _store_lock:
        store = _stores.get(database)
        if store is None:
            for old in _stores.values():  # the settings changed: the old connection is not needed
                old.close()
            _stores.clear()
            store = _stores[database] = open_store(settings)
    return store, False


def respond(request: Request) -> tuple[int, Answer]:
    require_admin(request)
    view, action = request.query.get("view", ""), request.query.get("action")
    if request.method == "GET" and not view:
        return 200, page()
    if request.method == "POST":
        require_same_origin(request)
        if request.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            raise ApiError(415, {"error": "Content-Type must be application/json"})
    if request.method == "GET" and view not in VIEWS:
        raise ApiError(400, {"error": f"Unknown view {view[:40]!r}"})
    settings = Settings.from_env()
    store, close_after = _store(settings)
    queries = Queries(store)
    try:
        if request.method == "GET":
            result = VIEWS[view](queries, request.query, settings)
            if result is None:
                raise ApiError(404, {"error": "Not found"})
            return 200, result
        try:
            return 200, {"success": True, "result": _act(queries, action or "", request.json_object())}
        except Rejected as exc:
            raise ApiError(409, {"error": "Refused", "message": exc.message}) from None
    finally:
        if close_after:
            store.close()

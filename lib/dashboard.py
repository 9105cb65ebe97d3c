"""The training monitor: one HTML page and the JSON it polls, behind HTTP Basic.

Reads are `GET ?view=…`; every state change is `POST ?action=…` with a JSON body, refused
unless `Origin` (or `Referer`) names this host, so a cross-site form cannot promote or resume
anything. The page is self-contained (no CDN, font or external script) under a strict CSP whose
nonce changes per response.
"""
from __future__ import annotations

import base64
import hmac
import secrets
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from lib.config import Settings, admin_password
from lib.http import ApiError, Page, Request
from lib.app import open_store
from lib.store import Rejected
from lib.store.queries import Queries, ReviewStatus

STATIC = Path(__file__).resolve().parent / "static"
REALM = 'Basic realm="Training monitor", charset="UTF-8"'


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


def page() -> Page:
    nonce = secrets.token_urlsafe(18)
    html = ((STATIC / "dashboard.html").read_text()
            .replace("{{css}}", (STATIC / "dashboard.css").read_text())
            .replace("{{js}}", (STATIC / "dashboard.js").read_text())
            .replace("{{nonce}}", nonce))
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
           "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return Page(html, {"Content-Security-Policy": csp, "Referrer-Policy": "same-origin",
                       "X-Frame-Options": "DENY", "Cache-Control": "no-store"})


def _uuid_arg(value, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ApiError(400, {"error": f"{name} must be a battle id (a UUID)"}) from None


def _feed(queries: Queries, query: dict):
    after_id = query.get("afterId")
    return queries.feed(query.get("afterUpdatedAt"), _uuid_arg(after_id, "afterId") if after_id else None)


VIEWS = {
    "feed": _feed,
    "battle": lambda queries, query: queries.battle(_uuid_arg(query.get("id"), "id")),
    "breakthroughs": lambda queries, query: queries.breakthroughs(),
    "personas": lambda queries, query: queries.persona_analytics(),
    "runs": lambda queries, query: queries.run_history(),
    "control": lambda queries, query: queries.status(),  # with the budget limits: see respond()
}
REVIEWS = {"review": ReviewStatus.REVIEWED, "reject": ReviewStatus.REJECTED}


def _act(queries: Queries, action: str, body: dict):
    if action == "promote":
        return queries.promote_breakthrough(_uuid_arg(body.get("battleId"), "battleId"), body.get("tacticText"))
    if action in REVIEWS:
        return queries.set_review_status(_uuid_arg(body.get("battleId"), "battleId"), REVIEWS[action])
    if action == "pause":
        reason = str(body.get("reason") or "").strip()[:500]
        if not reason:
            raise ApiError(400, {"error": "A pause needs a reason"})
        return queries.set_paused(True, f"{reason} (dashboard)")
    if action == "resume":
        return queries.set_paused(False)
    raise ApiError(400, {"error": f"Unknown action {action[:40]!r}"})


def respond(request: Request):
    require_admin(request)
    view, action = request.query.get("view"), request.query.get("action")
    if request.method == "GET" and not view:
        return 200, page()
    if request.method == "POST":
        require_same_origin(request)
        if request.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            raise ApiError(415, {"error": "Content-Type must be application/json"})
    settings = Settings.from_env()
    store = open_store(settings)
    queries = Queries(store)
    try:
        if request.method == "GET":
            if view not in VIEWS:
                raise ApiError(400, {"error": f"Unknown view {view[:40]!r}"})
            if view == "control":  # the day's and month's spend against this deployment's budgets
                result = queries.status(settings.daily_budget_usd, settings.monthly_budget_usd)
            else:
                result = VIEWS[view](queries, request.query)
            if result is None:
                raise ApiError(404, {"error": "Not found"})
            return 200, result
        try:
            return 200, {"success": True, "result": _act(queries, action or "", request.json_object())}
        except Rejected as exc:
            raise ApiError(409, {"error": "Refused", "message": exc.message}) from None
    finally:
        store.close()

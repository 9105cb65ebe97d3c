"""The plumbing every handler shares, written once: bearer auth in constant time, a JSON body
with a 64 KiB limit, JSON responses, error mapping, and a request id in every log line.

Inputs are refused with a 400 naming the problem rather than read leniently: a body whose length
is ambiguous is never taken for an empty one (an empty body means the defaults, a batch nobody
asked for), and no value can make parsing raise anything but a 400.

Standard library only, and nothing heavy at import: a 401 or a 500 for a missing secret must
answer without loading `openai`, `psycopg` or `requests`.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lib import log as logs
from lib.config import ConfigError, cron_secret
from lib.redact import redact

# A JSON object: a request's body, an error's body.
type Body = dict[str, Any]
# What a handler answers: JSON (an object, one of the query layer's TypedDicts, a list) or a page.
type Answer = Mapping[str, Any] | list[Any] | Page

MAX_BODY_BYTES = 64 * 1024
# Beyond these, a value is refused (400), never parsed: no input of ours needs more, and both
# bound the work (int() of a long string is quadratic; deep nesting exhausts the recursion limit).
MAX_INTEGER_DIGITS = 100
MAX_JSON_DEPTH = 32
# `x-vercel-id` looks like `iad1::abcde-1700000000000-0123456789ab`; anything else is not echoed.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9:_-]{1,80}")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")
_DIGITS = re.compile(r"[0-9]+")


class ApiError(Exception):
    """An answer other than 200, with its JSON body."""

    def __init__(self, status: int, body: Body, headers: dict[str, str] | None = None):
        super().__init__(body.get("error", str(status)))
        self.status = status
        self.body = body
        self.headers = headers or {}


class ClientDisconnected(Exception):
    """The client went away mid-request: there is no one to answer."""


class Page:
    """An HTML answer (the dashboard), with its own headers (its Content-Security-Policy)."""

    def __init__(self, html: str, headers: dict[str, str]):
        self.html = html
        self.headers = headers


class Request:
    """What an endpoint needs of the request; the body is read only if asked for."""

    def __init__(self, handler: BaseHTTPRequestHandler, method: str):
        self.method = method
        self.arrived = time.monotonic()
        parts = urlsplit(handler.path)
        self.path = parts.path
        self.query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.headers = handler.headers
        self.id = request_id(handler.headers.get("x-vercel-id"))
        self._handler = handler
        self._body: bytes | None = None

    def raw_body(self) -> bytes:
        """The body, exactly as long as its one valid `Content-Length` says (none: empty)."""
        if self._body is None:
            self._body = self._read_body()
        return self._body

    def _read_body(self) -> bytes:
        if "Transfer-Encoding" in self.headers:
            if "Content-Length" in self.headers:
                raise ApiError(400, {"error": "Both Transfer-Encoding and Content-Length headers: send one"})
            raise ApiError(411, {"error": "Content-Length required: send the body with a Content-Length "
                                          "header (chunked transfer encoding is not accepted)"})
        values = {value.strip() for value in self.headers.get_all("Content-Length") or ()}
        if not values:
            return b""
        if len(values) > 1:
            raise ApiError(400, {"error": "Conflicting Content-Length headers"})
        text = values.pop()
        if not _CONTENT_LENGTH.fullmatch(text):
            raise ApiError(400, {"error": "Invalid Content-Length header"})
        length = int(text)
        if length > MAX_BODY_BYTES:
            raise ApiError(413, {"error": f"Request body too large: the limit is {MAX_BODY_BYTES} bytes"})
        if length == 0:
            return b""
        try:
            data = self._handler.rfile.read(length)
        except TimeoutError:
            raise ApiError(408, {"error": "Request body not received in time"}) from None
        except ConnectionError:
            raise ClientDisconnected() from None
        if len(data) < length:
            raise ApiError(400, {"error": "Request body shorter than its Content-Length"})
        return data

    def json_object(self) -> Body:
        """The body as a JSON object; an empty body is `{}`."""
        raw = self.raw_body()
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw, parse_int=_json_integer)
        except RecursionError:  # deeper than the interpreter allows
            raise ApiError(400, _TOO_DEEP) from None
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            raise ApiError(400, {"error": "Request body is not valid JSON"}) from None
        if not isinstance(value, dict):
            raise ApiError(400, {"error": "Request body must be a JSON object"})
        if _depth(value) > MAX_JSON_DEPTH:
            raise ApiError(400, _TOO_DEEP)
        return value


_TOO_DEEP = {"error": f"Request body is nested too deeply (at most {MAX_JSON_DEPTH} levels)"}


def _json_integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ApiError(400, {"error": f"Request body has an integer of more than {MAX_INTEGER_DIGITS} digits"})
    return int(text)


def _depth(value: Any) -> int:
    """How deeply a parsed JSON value nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((child, level + 1) for child in children)
    return deepest


def request_id(vercel_id: str | None) -> str:
    """Vercel's id when it is a short id of the expected alphabet, else a fresh one."""
    if vercel_id and _SAFE_REQUEST_ID.fullmatch(vercel_id):
        return vercel_id
    return uuid.uuid4().hex[:12]


def query_positive_int(request: Request, name: str) -> int | None:
    """`?name=n`: ASCII digits only (`str.isdigit` would take '²'); absent or empty is None."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    digits = raw.strip().lstrip("0")
    if not _DIGITS.fullmatch(raw.strip()) or not digits:
        raise ApiError(400, {"error": f"{name} must be a positive integer, got {raw[:40]!r}"})
    if len(digits) > MAX_INTEGER_DIGITS:
        raise ApiError(400, {"error": f"{name} must be a positive integer of at most {MAX_INTEGER_DIGITS} digits"})
    return int(digits)


def body_positive_int(body: Body, name: str) -> int | None:
    """`{"name": n}` from a parsed body; absent or null is None."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ApiError(400, {"error": f"{name} must be a positive integer, got {json.dumps(value)[:40]}"})
    return int(value)


def require_cron_secret(request: Request) -> None:
    """Bearer `CRON_SECRET`, compared in constant time; unset refuses everyone."""
    secret = cron_secret()
    if secret is None:
        raise ApiError(500, {"error": "Cron secret not configured"})
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), secret.encode()):
        raise ApiError(401, {"error": "Unauthorized"})


class JsonHandler(BaseHTTPRequestHandler):
    """Base for the Vercel handlers: subclasses set `methods` and implement `respond`.

    `HEAD` is answered only where `methods` lists it, as the `GET` it mirrors without the body
    (a cron function's GET runs a batch, so there HEAD is 405).
    """

    methods: tuple[str, ...] = ("GET", "POST")
    server_version = "autonomous-training"

    def respond(self, request: Request) -> tuple[int, Answer]:
        raise NotImplementedError

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # The `request` JSON line is the access log. Vercel's runtime puts its own `log_message`
    # (an access line on stdout) before ours in the class order, so the hooks that call it are
    # what is replaced here.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        logs.configure()
        logs.log("http_error", level=logging.WARNING, message=(format % args)[:300])

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self, method: str) -> None:
        logs.configure()
        request = Request(self, "GET" if method == "HEAD" else method)
        logs.request_id.set(request.id)
        headers = {"x-request-id": request.id}
        try:
            if method not in self.methods:
                raise ApiError(405, {"error": f"Method {method} not allowed"}, {"Allow": ", ".join(self.methods)})
            status, body = self.respond(request)
        except ClientDisconnected:
            return self._disconnected(request, "reading the request")
        except ApiError as exc:
            status, body = exc.status, exc.body
            headers.update(exc.headers)
        except Exception as exc:
            status, body = error_response(exc, request.id)
        logs.log("request", level=logging.INFO if status < 500 else logging.ERROR, requestId=request.id,
                 method=method, path=request.path, status=status,
                 ms=int((time.monotonic() - request.arrived) * 1000))
        try:
            if isinstance(body, Page):
                self._send(status, body.html.encode(), "text/html; charset=utf-8", {**headers, **body.headers})
            else:
                self._send(status, json.dumps(body, default=str).encode(), "application/json; charset=utf-8",
                           headers)
        except ConnectionError:  # BrokenPipeError, ConnectionResetError: the work is done and recorded
            self._disconnected(request, "sending the response")

    def _disconnected(self, request: Request, during: str) -> None:
        self.close_connection = True
        logs.log("client_disconnected", level=logging.WARNING, requestId=request.id, method=request.method,
                 path=request.path, during=during)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()


def error_response(exc: Exception, request_id: str) -> tuple[int, Body]:
    """Maps a failure to a status and a body that names the problem, never a secret or a trace."""
    from lib.store import Rejected, StoreError, Unavailable  # not at the top: a 401 needs no store

    if isinstance(exc, ConfigError):
        return 500, {"error": "Configuration error", "message": redact(exc)}
    if isinstance(exc, Rejected):  # the data sent, not the database: the caller's to fix
        return 400, {"error": "Refused", "message": redact(exc)}
    if isinstance(exc, StoreError):
        return (503 if isinstance(exc, Unavailable) else 500), {"error": "Database error", "message": redact(exc)}
    # The type and where it was raised, not the message: an exception's text can carry a URL or key.
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f"{frame.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.tb_lineno}" if frame else "?"
    logs.log("unhandled_error", level=logging.ERROR, requestId=request_id, error=type(exc).__name__, at=where)
    return 500, {"error": "Internal error", "message": f"see the function log for request {request_id}"}

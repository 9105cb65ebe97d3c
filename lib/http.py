"""The plumbing every handler shares, written once: bearer auth in constant time, a JSON body
with a 64 KiB limit, JSON responses, error mapping, and a request id in every log line.

Standard library only, and nothing heavy at import: a 401 or a 500 for a missing secret must
answer without loading `openai`, `psycopg` or `requests`.
"""
from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from lib import log as logs
from lib.config import ConfigError, cron_secret

MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    """An answer other than 200, with its JSON body."""

    def __init__(self, status: int, body: dict, headers: dict | None = None):
        super().__init__(body.get("error", str(status)))
        self.status = status
        self.body = body
        self.headers = headers or {}


class Page:
    """An HTML answer (the dashboard), with its own headers (its Content-Security-Policy)."""

    def __init__(self, html: str, headers: dict):
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
        self.id = (handler.headers.get("x-vercel-id") or uuid.uuid4().hex[:12])[:80]
        self._handler = handler

    def raw_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, {"error": "Invalid Content-Length header"}) from None
        if length > MAX_BODY_BYTES:
            raise ApiError(413, {"error": f"Request body too large: the limit is {MAX_BODY_BYTES} bytes"})
        return self._handler.rfile.read(length) if length > 0 else b""

    def json_object(self) -> dict:
        """The body as a JSON object; an empty body is `{}`."""
        raw = self.raw_body()
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(400, {"error": "Request body is not valid JSON"}) from None
        if not isinstance(value, dict):
            raise ApiError(400, {"error": "Request body must be a JSON object"})
        return value


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
    """Base for the Vercel handlers: subclasses set `methods` and implement `respond`."""

    methods: tuple[str, ...] = ("GET", "POST")
    server_version = "autonomous-training"

    def respond(self, request: Request) -> tuple[int, dict | Page]:
        raise NotImplementedError

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def log_message(self, format, *args):  # the JSON log lines replace http.server's
        pass

    def _dispatch(self, method: str) -> None:
        logs.configure()
        request = Request(self, method)
        logs.request_id.set(request.id)
        headers = {"x-request-id": request.id}
        try:
            if method not in self.methods:
                raise ApiError(405, {"error": f"Method {method} not allowed"}, {"Allow": ", ".join(self.methods)})
            status, body = self.respond(request)
        except ApiError as exc:
            status, body = exc.status, exc.body
            headers.update(exc.headers)
        except Exception as exc:
            status, body = error_response(exc, request.id)
        logs.log("request", level=logging.INFO if status < 500 else logging.ERROR, requestId=request.id,
                 method=method, path=request.path, status=status,
                 ms=int((time.monotonic() - request.arrived) * 1000))
        if isinstance(body, Page):
            self._send(status, body.html.encode(), "text/html; charset=utf-8", {**headers, **body.headers})
        else:
            self._send(status, json.dumps(body, default=str).encode(), "application/json; charset=utf-8", headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict) -> None:
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


def error_response(exc: Exception, request_id: str) -> tuple[int, dict]:
    """Maps a failure to a status and a body that names the problem, never a secret or a trace."""
    from lib.redact import redact
    from lib.store import StoreError, Unavailable  # not at the top: a 401 needs no store

    if isinstance(exc, ConfigError):
        return 500, {"error": "Configuration error", "message": redact(exc)}
    if isinstance(exc, StoreError):
        return (503 if isinstance(exc, Unavailable) else 500), {"error": "Database error", "message": redact(exc)}
    # The type and where it was raised, not the message: an exception's text can carry a URL or key.
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f"{frame.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.tb_lineno}" if frame else "?"
    logs.log("unhandled_error", level=logging.ERROR, requestId=request_id, error=type(exc).__name__, at=where)
    return 500, {"error": "Internal error", "message": f"see the function log for request {request_id}"}

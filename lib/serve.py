"""`python -m lib serve`: the Vercel functions on a local threading server.

Routes come from the files under `api/` exactly as Vercel maps them (`api/cron/train.py` serves
`/api/cron/train`), rewrites and crons from `vercel.json`: the very same handler classes, at the
same paths, so what passes here passes there. Paths match as on Vercel: exactly, a trailing slash
included (`/admin/training-monitor/` needs its own rewrite there, so it gets none here).

Serving is robust to its clients: an idle or half-sent connection is closed after
`IDLE_TIMEOUT_S`, a client that goes away is one JSON log line, and SIGTERM stops the server and
leaves the embedded PostgreSQL (which stops once no other command uses it).
"""
from __future__ import annotations

import errno
import importlib.util
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from lib import log as logs
from lib.config import (
    PROJECT_ROOT,
    VERCEL_JSON,
    ConfigError,
    Settings,
    admin_password,
    cron_secret,
)
from lib.cron import cron_matches
from lib.store.embedded import EmbeddedPostgres

IDLE_TIMEOUT_S = 10.0


class ServeError(RuntimeError):
    """The server could not start (a bad or busy port); the message says which."""


def load_handlers() -> dict[str, type]:
    """`{route: handler class}` for every function file under api/."""
    routes = {}
    for path in sorted((PROJECT_ROOT / "api").rglob("*.py")):
        route = "/" + path.relative_to(PROJECT_ROOT).with_suffix("").as_posix()
        name = "vercel_fn_" + route.strip("/").replace("/", "_").replace("-", "_")
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ServeError(f"cannot load the function {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        routes[route] = module.handler
    return routes


def rewrite(path: str, rewrites: list[dict[str, str]]) -> str:
    for rule in rewrites:
        if _source_pattern(rule["source"]).fullmatch(path):
            return str(rule["destination"])
    return path


def _source_pattern(source: str) -> re.Pattern[str]:
    """A rewrite source as Vercel compiles it (path-to-regexp, strict): literal segments, `:name`
    (one segment) and `:name*` (zero or more segments); no trailing slash is optional."""
    pattern = ""
    for segment in source.split("/")[1:]:
        if segment.startswith(":") and segment.endswith("*"):
            pattern += "(?:/[^/]+)*"
        elif segment.startswith(":"):
            pattern += "/[^/]+"
        else:
            pattern += "/" + re.escape(segment)
    return re.compile(pattern or "/")


def make_router(routes: dict[str, type], rewrites: list[dict[str, str]], idle_timeout: float = IDLE_TIMEOUT_S) -> type:
    class Router(BaseHTTPRequestHandler):
        """Picks the function for the path, then lets that handler class answer the request."""

        timeout = idle_timeout  # each read and write on the connection; an idle client is dropped

        def _route(self) -> None:
            parts = urlsplit(self.path)
            target = routes.get(rewrite(parts.path, rewrites))
            if target is None:
                body = json.dumps({"error": "Not found"}).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return
            # Same instance state, the function's own class: its do_* methods answer as on Vercel.
            self.__class__ = target
            method = getattr(self, f"do_{self.command}", None)
            if method is None:
                self.send_error(501)
            else:
                method()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _route

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def log_error(self, format: str, *args: Any) -> None:  # a timed-out or malformed request: one JSON line
            logs.configure()
            logs.log("http_error", level=logging.WARNING, message=(format % args)[:300])

    return Router


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """An error outside our handlers (a client gone before its request was read, say): one JSON
        line, never a traceback."""
        error = sys.exc_info()[1]
        logs.configure()
        if isinstance(error, ConnectionError):
            logs.log("client_disconnected", level=logging.WARNING, during="handling the connection")
        else:
            logs.log("server_error", level=logging.ERROR, error=type(error).__name__)


def run_crons(port: int, crons: list[dict[str, str]], stop: threading.Event) -> None:
    """Fires vercel.json's crons against the local server, as Vercel Cron does (GET + bearer)."""
    secret = cron_secret() or ""
    while not stop.is_set():
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        for cron in crons:
            if cron_matches(cron["schedule"], now):
                threading.Thread(target=_fire, args=(port, cron["path"], secret), daemon=True).start()
        next_minute = now + timedelta(minutes=1)
        stop.wait(max(0.0, (next_minute - datetime.now(UTC)).total_seconds()))


def _fire(port: int, path: str, secret: str) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"Bearer {secret}", "User-Agent": "vercel-cron/1.0"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        status = type(exc).__name__
    print(f"cron {path}: {status} in {time.monotonic() - started:.1f}s", flush=True)


def _embedded_database_for_handlers() -> EmbeddedPostgres | None:
    """With no database configured, start the embedded one once for the whole server.

    The handlers read the environment per request, as on Vercel; pointing USE_LOCAL_DB at the
    running server (before any thread starts) spares each request a start and a stop.
    """
    try:
        settings = Settings.from_env()
    except ConfigError:
        return None  # each request will answer 500 naming the problem, as on Vercel
    if settings.database is None or settings.database.kind != "embedded":
        return None
    server = EmbeddedPostgres(settings.embedded_db_dir).start()
    os.environ["USE_LOCAL_DB"] = "true"
    os.environ["LOCAL_DB_URL"] = server.url
    return server


def startup_warnings() -> list[str]:
    """What will not work with the environment as it is, said once at start-up (the handlers
    read it again per request, as on Vercel): every bad setting at once, and each missing piece
    with what it stops."""
    warnings = []
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        warnings.append("every request answers 500 until these settings are fixed (then restart): "
                        + "; ".join(exc.problems))
        settings = None
    if cron_secret() is None:
        warnings.append("CRON_SECRET is not set: /api/cron/* refuse every call (500 \"Cron secret not configured\")")
    if admin_password() is None:
        warnings.append("ADMIN_PASSWORD is not set: the dashboard (/admin/training-monitor) refuses every visitor")
    if settings is not None:
        warnings.extend(settings.ignored)
        if settings.database is None:
            warnings.append(f"requests that need the database answer 500: {settings.database_error}")
        if not settings.simulated and not settings.openai_api_key:
            warnings.append("no OpenAI key (SANDBOX_OPENAI_API_KEY or OPENAI_API_KEY) and LLM_PROVIDER is not "
                            "simulated: /api/cron/train fails (set LLM_PROVIDER=simulated for offline runs)")
    return warnings


def bind(port: int, handler: type) -> LocalServer:
    """The listening server, or a one-line `ServeError` naming the port and what to do."""
    try:
        return LocalServer(("127.0.0.1", port), handler)
    except OverflowError:
        raise ServeError(f"port {port} is not a port number: use 0 to 65535 (0 picks a free one)") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} is already in use: stop what holds it or pick another with "
                             "--port (0 picks a free one)") from None
        raise ServeError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread; a BaseException, as KeyboardInterrupt is, so that
    socketserver's per-request `except Exception` cannot swallow it."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


def serve(port: int, with_crons: bool, idle_timeout: float = IDLE_TIMEOUT_S) -> None:
    config = json.loads(VERCEL_JSON.read_text())
    routes = load_handlers()
    server = bind(port, make_router(routes, config.get("rewrites", []), idle_timeout))
    stop = threading.Event()
    database = None
    previous = signal.signal(signal.SIGTERM, _on_sigterm)  # stop as on Ctrl-C: what we started, we stop
    try:
        database = _embedded_database_for_handlers()
        print(f"serving on http://127.0.0.1:{server.server_address[1]} "
              f"({', '.join(sorted(routes))}{', crons on' if with_crons else ''})", flush=True)
        for warning in startup_warnings():
            print(f"warning: {warning}", flush=True)
        if with_crons:
            threading.Thread(target=run_crons, args=(server.server_address[1], config.get("crons", []), stop),
                             daemon=True).start()
        server.serve_forever()
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop.set()
        server.server_close()
        if database is not None:
            database.stop()

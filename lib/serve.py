"""`python -m lib serve`: the Vercel functions on a local threading server.

Routes come from the files under `api/` exactly as Vercel maps them (`api/cron/train.py` serves
`/api/cron/train`), rewrites and crons from `vercel.json`: the very same handler classes, at the
same paths, so what passes here passes there.
"""
from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from lib.config import PROJECT_ROOT, ConfigError, Settings, cron_secret
from lib.store.embedded import EmbeddedPostgres

VERCEL_JSON = PROJECT_ROOT / "vercel.json"


def load_handlers() -> dict[str, type]:
    """`{route: handler class}` for every function file under api/."""
    routes = {}
    for path in sorted((PROJECT_ROOT / "api").rglob("*.py")):
        route = "/" + path.relative_to(PROJECT_ROOT).with_suffix("").as_posix()
        spec = importlib.util.spec_from_file_location(f"vercel_fn_{route.strip('/').replace('/', '_').replace('-', '_')}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        routes[route] = module.handler
    return routes


def rewrite(path: str, rewrites: list[dict]) -> str:
    for rule in rewrites:
        source = rule["source"]
        if source.endswith("/:path*"):
            if path.startswith(source[: -len("/:path*")] + "/"):
                return rule["destination"]
        elif path == source:
            return rule["destination"]
    return path


def make_router(routes: dict[str, type], rewrites: list[dict]) -> type:
    class Router(BaseHTTPRequestHandler):
        """Picks the function for the path, then lets that handler class answer the request."""

        def _route(self):
            parts = urlsplit(self.path)
            target = routes.get(rewrite(parts.path.rstrip("/") or "/", rewrites))
            if target is None:
                body = json.dumps({"error": "Not found"}).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
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

        def log_message(self, format, *args):
            pass

    return Router


def cron_matches(schedule: str, moment: datetime) -> bool:
    """Standard 5-field cron: `*`, `*/n`, `a-b`, `a,b`, numbers (Vercel Cron runs in UTC)."""
    fields = schedule.split()
    values = (moment.minute, moment.hour, moment.day, moment.month, (moment.isoweekday() % 7))
    return len(fields) == 5 and all(_field_matches(f, v) for f, v in zip(fields, values))


def _field_matches(field: str, value: int) -> bool:
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part == "*":
            if value % step == 0:
                return True
        elif "-" in part:
            low, high = (int(x) for x in part.split("-", 1))
            if low <= value <= high and (value - low) % step == 0:
                return True
        elif int(part) == value:
            return True
    return False


def run_crons(port: int, crons: list[dict], stop: threading.Event) -> None:
    """Fires vercel.json's crons against the local server, as Vercel Cron does (GET + bearer)."""
    secret = cron_secret() or ""
    while not stop.is_set():
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        for cron in crons:
            if cron_matches(cron["schedule"], now):
                threading.Thread(target=_fire, args=(port, cron["path"], secret), daemon=True).start()
        next_minute = now + timedelta(minutes=1)
        stop.wait(max(0.0, (next_minute - datetime.now(timezone.utc)).total_seconds()))


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


def _embedded_database_for_handlers():
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


def serve(port: int, with_crons: bool) -> None:
    database = _embedded_database_for_handlers()
    config = json.loads(VERCEL_JSON.read_text())
    routes = load_handlers()
    server = ThreadingHTTPServer(("127.0.0.1", port), make_router(routes, config.get("rewrites", [])))
    server.daemon_threads = True
    stop = threading.Event()
    print(f"serving on http://127.0.0.1:{server.server_address[1]} "
          f"({', '.join(sorted(routes))}{', crons on' if with_crons else ''})", flush=True)
    if with_crons:
        threading.Thread(target=run_crons, args=(server.server_address[1], config.get("crons", []), stop),
                         daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        if database is not None:
            database.stop()

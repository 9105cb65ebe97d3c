"""A local HTTP receiver (127.0.0.1) that records what it is sent: a Slack incoming webhook, or
the scout endpoint as seen by the train function. Its answer can be changed at will: a status
(with Slack-like bodies and headers), a script of answers to give first, a redirect, or (on GET)
headers trickled a byte at a time, as a server holding its client would."""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, status: int = 200):
        self.status = status
        self.body: str | None = None  # the answer's body; default "ok" (2xx) or empty
        self.headers: dict[str, str] = {}  # extra headers on every answer
        self.script: deque = deque()  # (status, body, headers) answered first, one per request
        self.redirect_to: str | None = None  # answer 307 to this URL + the request's path
        self.trickle_s: float | None = None  # on GET: the answer's headers, one byte every this many seconds
        self._stopped = threading.Event()
        self.received: list[dict] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self) -> list:
        with self._lock:
            return [entry["json"] for entry in self.received if entry["status"] < 300]

    def answer_next(self, status: int, body: str | None = None, headers: dict | None = None) -> None:
        with self._lock:
            self.script.append((status, body, headers or {}))

    def stop(self) -> None:
        self._stopped.set()
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, path: str) -> tuple[int, str, dict]:
        with self._lock:
            if self.script:
                status, body, headers = self.script.popleft()
            else:
                status, body, headers = self.status, self.body, dict(self.headers)
        if self.redirect_to:
            status, headers = 307, {**headers, "Location": self.redirect_to + path}
        if body is None:
            body = "ok" if status < 300 else ""
        return status, body, headers

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, body, headers = receiver._answer(self.path)
                with receiver._lock:
                    receiver.received.append({"method": self.command, "path": self.path,
                                              "headers": dict(self.headers), "json": json.loads(raw or b"null"),
                                              "status": status, "arrived": time.monotonic()})
                data = body.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # Vercel Cron's call, as `serve --cron` makes it
                if receiver.trickle_s is None:
                    return self.do_POST()
                with receiver._lock:
                    receiver.received.append({"method": self.command, "path": self.path,
                                              "headers": dict(self.headers), "json": None, "status": 200,
                                              "arrived": time.monotonic()})
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for byte in b"X-Slow: " + b"x" * 1000:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    if receiver._stopped.wait(receiver.trickle_s):
                        return

        return Handler

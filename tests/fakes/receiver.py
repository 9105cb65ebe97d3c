"""A local HTTP receiver (127.0.0.1) that records what it is sent: a Slack incoming webhook, or
the scout endpoint as seen by the train function. Its answer status can be changed at will."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, status: int = 200):
        self.status = status
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

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.status
                with receiver._lock:
                    receiver.received.append({"method": self.command, "path": self.path,
                                              "headers": dict(self.headers), "json": json.loads(raw or b"null"),
                                              "status": status})
                body = b"ok" if status < 300 else b"error"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST  # Vercel Cron's call, as `serve --cron` makes it

        return Handler

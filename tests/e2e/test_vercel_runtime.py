"""The functions under Vercel's own Python runtime (`vercel_runtime.vc_init`, from PyPI's
`vercel-runtime`, as Vercel bundles it): the runtime starts the handler class, and this test plays
the platform's side of its IPC socket, reading every log message it sends for a request."""
import base64
import json
import socket
import subprocess
import sys

import pytest
import requests

from lib.config import PROJECT_ROOT
from tests.conftest import child_env

IPC_TIMEOUT_S = 30


class Platform:
    """The platform end of the runtime's IPC socket: NUL-separated JSON messages."""

    def __init__(self, path: str):
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(1)
        self._connection = None
        self._buffer = b""
        self.messages: list[dict] = []

    def accept(self) -> None:
        self._listener.settimeout(IPC_TIMEOUT_S)
        self._connection, _ = self._listener.accept()
        self._connection.settimeout(IPC_TIMEOUT_S)

    def until(self, kind: str) -> dict:
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                self.messages.append(message)
                if message["type"] == kind:
                    return message
            chunk = self._connection.recv(65536)
            assert chunk, f"the runtime closed its IPC socket before sending {kind!r}"
            self._buffer += chunk

    def logs(self, request_id: int) -> list[dict]:
        return [{**m["payload"], "text": base64.b64decode(m["payload"]["message"]).decode()}
                for m in self.messages
                if m["type"] == "log" and m["payload"]["context"]["requestId"] == request_id]

    def close(self) -> None:
        for sock in (self._connection, self._listener):
            if sock is not None:
                sock.close()


@pytest.fixture
def vercel_function(tmp_path):
    """Starts api/<name>.py under the runtime; yields (platform, port)."""
    started = []

    def start(function: str, **env):
        platform = Platform(str(tmp_path / f"ipc-{len(started)}.sock"))
        entrypoint = f"api/{function}.py"
        process = subprocess.Popen(
            [sys.executable, "-m", "vercel_runtime.vc_init"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env=child_env(VERCEL="1", VERCEL_IPC_PATH=platform._listener.getsockname(),
                          __VC_HANDLER_ENTRYPOINT=entrypoint,
                          __VC_HANDLER_ENTRYPOINT_ABS=str(PROJECT_ROOT / entrypoint),
                          __VC_HANDLER_MODULE_NAME=entrypoint[:-3].replace("/", ".").replace("-", "_"),
                          __VC_HANDLER_VARIABLE_NAME="handler", **env))
        started.append((platform, process))
        platform.accept()
        port = platform.until("server-started")["payload"]["httpPort"]
        return platform, port

    yield start
    for platform, process in started:
        process.kill()
        process.communicate(timeout=10)
        platform.close()


def invoke(platform: Platform, port: int, request_id: int, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"x-vercel-internal-invocation-id": f"inv-{request_id}", "x-vercel-internal-request-id": str(request_id),
               **kwargs.pop("headers", {})}
    response = requests.request(method, f"http://127.0.0.1:{port}{path}", headers=headers, timeout=30, **kwargs)
    platform.until("end")
    return response


def test_our_log_lines_reach_the_runtime_with_their_level_and_no_access_line(vercel_function):
    platform, port = vercel_function("cron/train", CRON_SECRET="s3cret")
    refused = invoke(platform, port, 7, "POST", "/api/cron/train", headers={"Authorization": "Bearer wrong",
                                                                            "x-vercel-id": "iad1::abc-123"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "iad1::abc-123"
    [line] = platform.logs(7)
    assert line["level"] == "info" and "stream" not in line, "through the runtime's log handler, with its level"
    assert json.loads(line["text"]) == {"event": "request", "requestId": "iad1::abc-123", "method": "POST",
                                        "path": "/api/cron/train", "status": 401, "ms": 0}

    failed = invoke(platform, port, 8, "POST", "/api/cron/train", headers={"Authorization": "Bearer s3cret"},
                    data=b'{"batchSize": "two"}')
    assert failed.status_code == 400
    assert [(line["level"], json.loads(line["text"])["status"]) for line in platform.logs(8)] == [("info", 400)]


def test_a_server_error_is_logged_at_error_level(vercel_function):
    platform, port = vercel_function("cron/scout-scan")  # no CRON_SECRET: 500
    assert invoke(platform, port, 3, "GET", "/api/cron/scout-scan").status_code == 500
    assert [line["level"] for line in platform.logs(3)] == ["error"]


def test_head_is_answered_by_the_dashboard_under_the_runtime(vercel_function):
    platform, port = vercel_function("admin/training-monitor", ADMIN_PASSWORD="pw")
    head = invoke(platform, port, 5, "HEAD", "/api/admin/training-monitor", auth=("admin", "pw"))
    assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) > 1000
    assert [json.loads(line["text"])["method"] for line in platform.logs(5)] == ["HEAD"]

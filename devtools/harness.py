"""What tests and benchmarks share to drive processes: their environment, their output as it comes,
and waiting on a condition."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import IO, Any

# Settings a developer's shell may hold; a child process of a test starts without them.
PROJECT_VARIABLES = ("SUPABASE", "SANDBOX", "NEXT_PUBLIC", "OPENAI", "CRON", "SLACK", "VERCEL", "USE_LOCAL_DB",
                     "LOCAL_DB_URL", "LLM_PROVIDER", "ADMIN_PASSWORD")


def child_env(**settings: Any) -> dict[str, str]:
    """The environment for a CLI or server process: this one's, minus project settings, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_VARIABLES)}
    env.update({k: str(v) for k, v in settings.items() if v is not None})
    return env


def wait_until(predicate: Callable[[], Any], timeout: float, message: str = "",
               pause: Callable[[], Any] | None = None) -> Any:
    """Polls `predicate` until it returns something truthy (returned), or fails after `timeout` s.

    The one way a test waits for something to happen: never a bare sleep standing in for it.
    `pause` is how to wait between checks (a page's own wait, say); by default 20 ms.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or 'the condition'}")
        if pause is None:
            time.sleep(0.02)
        else:
            pause()


class Output:
    """A child process's output, read line by line as it comes (on a thread), so a test can wait on
    the line it expects (`wait_until(lambda: output.containing(...))`) before stopping the process:
    a line logged after the state the test waited for would otherwise be lost with the process."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    def containing(self, text: str) -> list[str]:
        """The lines read so far that contain `text`."""
        with self._lock:
            return [line for line in self._lines if text in line]

    def until_closed(self, timeout: float) -> list[str]:
        """Every line, once the stream ended (the process exited and closed it)."""
        self._reader.join(timeout)
        if self._reader.is_alive():
            raise AssertionError(f"the output was still open after {timeout} s")
        with self._lock:
            return list(self._lines)

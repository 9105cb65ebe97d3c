"""Structured logs: one JSON object per line on stdout, through the `training` logger.

Handlers call `configure()` so the lines reach Vercel's log; the CLI does not, so its output stays
a progress bar. Callers pass figures and ids only: never secrets, never transcript text.

Under Vercel's Python runtime the root logger already has the runtime's handler, which sends
each record to the request's log with its level; a stdout handler of ours would bypass it (the
lines would lose their level). So when the root logger has a handler, the lines propagate to it;
only with none (`python -m lib serve`, a plain process) do they get a stdout handler of their own.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
from typing import Any

from lib.redact import redact

_logger = logging.getLogger("training")
# The request being served, added to every line logged while serving it (battle threads included:
# the runner starts them in a copy of the request's context).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_configured = False
_configure_lock = threading.Lock()


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    if _logger.isEnabledFor(level):
        current = request_id.get()
        context = {"requestId": current} if current and "requestId" not in fields else {}
        _logger.log(level, json.dumps(_redacted({"event": event, **context, **fields}), default=str))


def _redacted(value: Any) -> Any:
    """Every text in a log line passes redaction: an error field may hold a driver's words."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(item) for item in value]
    if isinstance(value, BaseException):
        return redact(value)
    return value


def configure() -> None:
    global _configured
    if _configured:
        return
    with _configure_lock:
        if _configured:
            return
        _logger.setLevel(logging.INFO)
        if logging.getLogger().handlers:
            _logger.propagate = True
        else:
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("%(message)s"))
            _logger.addHandler(handler)
            _logger.propagate = False
        _configured = True

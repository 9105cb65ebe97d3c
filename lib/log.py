"""Structured logs: one JSON object per line on stdout, through the `training` logger.

Handlers call `configure()` so the lines reach Vercel's log; the CLI does not, so its output stays
a progress bar. Callers pass figures and ids only: never secrets, never transcript text.
"""
from __future__ import annotations

import json
import logging
import sys

_logger = logging.getLogger("training")


def log(event: str, level: int = logging.INFO, **fields) -> None:
    if _logger.isEnabledFor(level):
        _logger.log(level, json.dumps({"event": event, **fields}, default=str))


def configure() -> None:
    if not _logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        _logger.addHandler(handler)
        _logger.setLevel(logging.INFO)
        _logger.propagate = False

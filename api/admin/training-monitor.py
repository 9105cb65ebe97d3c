"""Vercel function: the training monitor dashboard and its JSON (reached at /admin/training-monitor)."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lib import dashboard  # noqa: E402  (needed by every request: its HTTP Basic check comes first)
from lib.http import Answer, JsonHandler, Request  # noqa: E402


class handler(JsonHandler):
    methods = ("GET", "HEAD", "POST")  # HEAD: the GET without its body (reading changes nothing)

    def respond(self, request: Request) -> tuple[int, Answer]:
        return dashboard.respond(request)

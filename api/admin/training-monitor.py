"""Vercel function: the training monitor dashboard and its JSON (reached at /admin/training-monitor)."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lib.http import JsonHandler  # noqa: E402


class handler(JsonHandler):
    def respond(self, request):
        from lib.dashboard import respond

        return respond(request)

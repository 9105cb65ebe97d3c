"""Vercel function: GET (Vercel Cron) or POST (manual trigger) runs one training batch."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lib.http import Answer, JsonHandler, Request, require_cron_secret  # noqa: E402


class handler(JsonHandler):
    def respond(self, request: Request) -> tuple[int, Answer]:
        require_cron_secret(request)
        from lib.endpoints import train

        return train(request)

"""vercel.json's cron schedules: the one parser, shared by the local server's `serve --cron` and the
dashboard's "next run" (which must not import the local server, nor through it the embedded
PostgreSQL, in production)."""
from __future__ import annotations

from datetime import datetime


def cron_matches(schedule: str, moment: datetime) -> bool:
    """Standard 5-field cron: `*`, `*/n`, `a-b`, `a,b`, numbers (Vercel Cron runs in UTC)."""
    fields = schedule.split()
    values = (moment.minute, moment.hour, moment.day, moment.month, (moment.isoweekday() % 7))
    return len(fields) == 5 and all(_field_matches(f, v) for f, v in zip(fields, values, strict=True))


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

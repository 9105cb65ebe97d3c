"""What the dashboard's read functions answer (`?view=…`, docs/http.md), as `TypedDict`s: the
shapes `lib.store.queries` checks each result by, and mypy the code that reads it."""
from __future__ import annotations

from typing import TypedDict

from lib.store import JSONObject


class RefereeConsistency(TypedDict):
    days: int
    pairs: int
    meanAbsDiff: float | None
    agreement: float | None
    perCriterion: dict[str, float]


class RefereeReport(TypedDict):
    """The dashboard's `?view=referee`: consistency, precision, unconfirmed, last calibration."""

    consistency: RefereeConsistency
    precision: JSONObject
    unconfirmed: list[JSONObject]
    calibration: JSONObject | None


class FeedPage(TypedDict):
    """The latest battles (or those changed after the cursor), and the cursor for the next call."""

    battles: list[JSONObject]
    cursor: JSONObject | None


class Breakthroughs(TypedDict):
    pending: int
    items: list[JSONObject]


class RunHistory(TypedDict):
    """The runs started in the last hours, oldest first, with the window's bounds."""

    since: str
    now: str
    runs: list[JSONObject]  # id, status, trigger, startedAt, battles, cost… (see docs/http.md)


class ActiveTactics(TypedDict):
    """The active version's tactics as the dashboard shows them."""

    versionId: int
    basePrompt: str | None
    tactics: list[JSONObject]

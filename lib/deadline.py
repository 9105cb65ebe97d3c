"""One deadline: when work that started at `start` must be done, in `time.monotonic()` seconds.

Every bounded piece of work computes its deadline here: a run (MAX_TRAINING_EXECUTION_TIME_MS from
the request's arrival or the command's start), what follows it (`lib.followups`: the response
leaves a little after the run's deadline), a scout scan, a persona generation, a referee check.
The layers below (`lib.llm`, `lib.store`) take the point in time, `at`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from lib.config import Settings

# A write that records what happened (a battle's end, the run's figures) gets this long past the
# deadline, so work cut short by the deadline is still saved.
WRITE_GRACE_S = 1.0


@dataclass(frozen=True)
class Deadline:
    start: float  # a time.monotonic() value: when the clock began
    limit_s: float  # seconds allowed from `start`; math.inf for no deadline

    @classmethod
    def after(cls, seconds: float, start: float | None = None) -> Deadline:
        """The deadline `seconds` after `start` (default now)."""
        return cls(time.monotonic() if start is None else start, seconds)

    @classmethod
    def for_run(cls, settings: Settings, start: float | None = None) -> Deadline:
        """MAX_TRAINING_EXECUTION_TIME_MS after `start` (default now)."""
        return cls.after(settings.max_execution_ms / 1000, start)

    @classmethod
    def none(cls) -> Deadline:
        """No deadline: nothing waits for the work (the CLI's follow-ups)."""
        return cls(time.monotonic(), math.inf)

    @property
    def at(self) -> float:
        return self.start + self.limit_s

    @property
    def bounded(self) -> float | None:
        """`at`, or None without a deadline (what lib.store takes for its default retry window)."""
        return None if math.isinf(self.limit_s) else self.at

    def left(self) -> float:
        """Seconds until the deadline (negative once past it)."""
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.start) * 1000)

    def extended(self, seconds: float) -> Deadline:
        """The same clock, `seconds` more allowed."""
        return Deadline(self.start, self.limit_s + seconds)

    def for_writes(self) -> float:
        """The deadline for recording what happened: WRITE_GRACE_S past this one, or past now if later."""
        return max(self.at, time.monotonic()) + WRITE_GRACE_S

    def for_alert(self, longest_s: float) -> float:
        """The time an alert that must go out even past the deadline (training paused, a canary
        decided) may take: what is left plus WRITE_GRACE_S, at most `longest_s`."""
        return min(longest_s, max(0.0, self.left()) + WRITE_GRACE_S)

    def for_follow_up(self, longest_s: float, shortest_s: float) -> float | None:
        """The time a follow-up (a Slack message, the scout's webhook) may take: what is left, at most
        `longest_s`; None when less than `shortest_s` is left, too little to be worth a try."""
        left = self.left()
        return min(longest_s, left) if left >= shortest_s else None

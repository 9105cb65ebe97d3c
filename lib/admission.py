"""Admission: whether a run's next battle may start, and when.

A battle starts only if it can finish: the run is not stopped (a pause, the cost cap, the
deadline), its budget is not spent, the time left holds a battle (`expected_battle_s`), the
provider's rate limits leave headroom (lib.pacing), and DELAY_BETWEEN_BATTLES_MS has passed since
the previous start was recorded. When the time left or the rate limits end the run's starts, the
reason goes into the run's `errors`, once.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from lib.budget import CostCap
from lib.deadline import Deadline
from lib.pacing import Pacer
from lib.pause_watch import PAUSE_POLL_S

T = TypeVar("T")


class Admission:
    def __init__(self, deadline: Deadline, budget: CostCap, stop: threading.Event, pacer: Pacer,
                 expected_battle_s: float, delay_s: float, errors: list[str], lock: threading.Lock):
        self.deadline = deadline
        self.budget = budget
        self.stop = stop
        self.pacer = pacer
        self.expected_battle_s = expected_battle_s
        self.delay_s = delay_s
        self.errors, self._lock = errors, lock  # the run's, shared with its battles
        self.timed_out = False  # the deadline left no room for a battle, or cut battles short
        self._start_cond = threading.Condition()
        self._last_start: float | None = None
        self._starting = False
        self._last_admitted = float("-inf")  # when the last battle was handed to a thread

    def admits_another(self) -> bool:
        """Not stopped, under budget, and a battle fits in the time left."""
        if self.stop.is_set() or self.budget.tripped:
            return False
        if self.deadline.left() < self.expected_battle_s:
            with self._lock:
                if not self.timed_out:
                    self.timed_out = True
                    self.errors.append(
                        f"Execution timeout: {max(0.0, self.deadline.left()):.1f}s left and a battle takes about "
                        f"{self.expected_battle_s:.1f}s; the remaining personas wait for the next run")
            return False
        return True

    def admitted(self) -> None:
        """A battle was handed to a thread now."""
        self._last_admitted = time.monotonic()

    def cut_short_at_deadline(self) -> None:
        with self._lock:
            self.timed_out = True
            self.errors.append("Execution timeout: battles still running at the deadline were saved "
                               "as timed_out with their transcripts")

    def wait_for_headroom(self) -> bool:
        """Holds the next battle while this run's calls wait for the provider's rate limits
        (lib.pacing): another battle would only wait with them. False when the run stopped or no
        battle fits in the time left."""
        while not self.pacer.wait_while_throttled(min(PAUSE_POLL_S, max(0.0, self.deadline.left())),
                                                  self._last_admitted):
            if self.stop.is_set():
                return False
            if self.deadline.left() < self.expected_battle_s:
                with self._lock:
                    self.errors.append("Rate limit: the provider's limits (its x-ratelimit headers) left no room to "
                                       "start another battle before the deadline; the remaining personas wait for "
                                       "the next run")
                return False
        return True

    def start_spaced(self, start: Callable[[], T]) -> T | None:
        """Calls `start` (which writes the battle's start) at least `delay_s` after the previous one.

        The spacing is measured from when the previous start was recorded, so the rows'
        `started_at` are spaced too; the lock is held only to read and set the times, never over
        the database call. With no delay, starts do not wait for each other at all. Returns None
        when the battle may no longer start.
        """
        with self._start_cond:
            while self.delay_s > 0 and (self._starting or self._last_start is not None):
                if self.stop.is_set():
                    return None
                if self._starting:  # the previous start's row is being written: its time is not known yet
                    self._start_cond.wait(PAUSE_POLL_S)
                    continue
                assert self._last_start is not None  # neither starting nor the first start: one was recorded
                gap = self._last_start + self.delay_s - time.monotonic()
                if gap <= 0:
                    break
                self._start_cond.wait(min(gap, PAUSE_POLL_S))
            if not self.admits_another():
                return None
            self._starting = True
        try:
            return start()
        finally:
            with self._start_cond:
                self._last_start, self._starting = time.monotonic(), False
                self._start_cond.notify_all()

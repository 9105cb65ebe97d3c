"""The pause watch: a run reads the persisted pause while its battles go on.

A pause (by a person, or another run reaching its cost cap) stops the run within about one LLM
call: the watch reads it every PAUSE_POLL_S, and on a pause records the reason and sets the run's
stop signal, which every call and every waiting start honours. An `Interrupt` (the CLI's Ctrl-C
or SIGTERM) stops it the same way.
"""
from __future__ import annotations

import contextvars
import threading
import time

from lib.deadline import Deadline
from lib.log import log
from lib.store.queries import PauseState, Queries

# How often a running batch reads the pause (and a waiting start re-checks the stop signal).
PAUSE_POLL_S = 0.5


class Interrupt:
    """Set from a signal handler (the CLI's Ctrl-C or SIGTERM): the run stops as a pause stops it,
    its battles in flight are cut, and it is recorded as killed."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None  # the signal's name

    def set(self, reason: str) -> None:
        self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


class PauseWatch:
    def __init__(self, queries: Queries, run_id: str, deadline: Deadline, stop: threading.Event,
                 interrupt: Interrupt | None = None):
        self.queries = queries
        self.run_id = run_id
        self.deadline = deadline
        self.stop = stop
        self.interrupt = interrupt
        self.reason: str | None = None  # set when a pause stopped the run

    @property
    def interrupted(self) -> str | None:
        """The signal that stopped the run, if one did."""
        return self.interrupt.reason if self.interrupt is not None and self.interrupt.is_set() else None

    def start(self) -> None:
        """Watches on a daemon thread until the run stops (or is paused)."""
        threading.Thread(target=contextvars.copy_context().run, args=(self._watch,),
                         name=f"pause-{self.run_id[:8]}", daemon=True).start()

    def _watch(self) -> None:
        while not self.stop.is_set():
            polled_at = time.monotonic()
            if self.interrupted:
                self.stop.set()
                return
            try:
                state = self.queries.pause_state(deadline=self.deadline.at)
            except Exception as exc:  # a missed poll only delays the stop; the battles go on
                log("pause_poll_failed", runId=self.run_id, error=type(exc).__name__)
                state = PauseState(paused=False, reason=None, pausedBy=None, updatedAt="")
            if state["paused"]:
                self.reason = state["reason"] or "paused"
                self.stop.set()
                return
            # Every PAUSE_POLL_S from poll to poll: a slow read (a busy database) does not stretch the
            # wait, and a read slower than that still leaves the database a breath between two.
            self.stop.wait(max(PAUSE_POLL_S / 5, polled_at + PAUSE_POLL_S - time.monotonic()))

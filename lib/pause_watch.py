"""The pause watch: a run reads the persisted pause while its battles go on.

A pause (by a person, or another run reaching its cost cap) stops the run within about one LLM
call: the watch reads it every PAUSE_POLL_S, and on a pause records the reason and sets the run's
stop signal, which every call and every waiting start honours.
"""
from __future__ import annotations

import contextvars
import threading

from lib.deadline import Deadline
from lib.log import log
from lib.store.queries import PauseState, Queries

# How often a running batch reads the pause (and a waiting start re-checks the stop signal).
PAUSE_POLL_S = 0.5


class PauseWatch:
    def __init__(self, queries: Queries, run_id: str, deadline: Deadline, stop: threading.Event):
        self.queries = queries
        self.run_id = run_id
        self.deadline = deadline
        self.stop = stop
        self.reason: str | None = None  # set when a pause stopped the run

    def start(self) -> None:
        """Watches on a daemon thread until the run stops (or is paused)."""
        threading.Thread(target=contextvars.copy_context().run, args=(self._watch,),
                         name=f"pause-{self.run_id[:8]}", daemon=True).start()

    def _watch(self) -> None:
        while not self.stop.is_set():
            try:
                state = self.queries.pause_state(deadline=self.deadline.at)
            except Exception as exc:  # a missed poll only delays the stop; the battles go on
                log("pause_poll_failed", runId=self.run_id, error=type(exc).__name__)
                state = PauseState(paused=False, reason=None, pausedBy=None, updatedAt="")
            if state["paused"]:
                self.reason = state["reason"] or "paused"
                self.stop.set()
                return
            self.stop.wait(PAUSE_POLL_S)

"""Pacing to the provider's rate limits, learned from the `x-ratelimit-*` headers of its answers.

OpenAI answers every request, per model, with `x-ratelimit-limit-requests`,
`x-ratelimit-remaining-requests`, `x-ratelimit-reset-requests` and the same three for tokens. A
limit is a bucket of `limit` per minute that refills continuously; a request takes one request
and its estimated tokens (the prompt, about 4 bytes a token, plus `max_tokens`) when it is
admitted, and is answered 429 when the bucket lacks them.

`Pacer` keeps, per model, an estimate of both buckets: each call it lets through is debited at
once, the buckets refill at `limit / 60` per second, and each answer's headers replace the
estimate with the provider's own figure (brought forward to now: refilled since the call was
sent, less the calls sent after it). Other processes' calls show up there too, so parallel runs
share one limit without talking to each other. A call waits until both buckets can take it with
a small margin, so 429s stay the exception.

The runner asks `wait_while_throttled` before each new battle. While calls wait here, or did
within about one call's time, the limit binds and no battle starts (it would only wait with
them, and risk the deadline). Within RAMP_S of the last wait, battles start one per call's time
at most, so concurrency ramps up while there is headroom and settles at about as many battles as
the limit can feed; further from any wait they start freely. With no headers (the simulator, a
server that sends none) nothing ever waits.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from lib.llm import MIN_USEFUL_CALL_S, DeadlineExceeded, Stopped

# A call is let through only if it leaves this share of the bucket (absorbs other processes'
# calls that the last answer did not show yet, and estimates a little short).
MARGIN_SHARE = 0.05
# How long a call takes, before any has been answered (then: a moving average of the answers).
FIRST_CALL_S = 0.5
# For this long after a call waited, battles start one per call's time at most.
RAMP_S = 10.0


@dataclass
class Bucket:
    limit: float
    level: float
    stamp: float

    @property
    def rate(self) -> float:
        return self.limit / 60.0

    def available(self, now: float) -> float:
        return min(self.limit, self.level + self.rate * (now - self.stamp))

    def take(self, amount: float, now: float) -> None:
        self.level, self.stamp = self.available(now) - amount, now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until the bucket holds `amount` plus the margin (0: now)."""
        want = min(amount, self.limit * (1 - MARGIN_SHARE)) + self.limit * MARGIN_SHARE
        return max(0.0, (want - self.available(now)) / self.rate)


@dataclass
class Ticket:
    """One call let through: what it took, when, and its place in the model's sequence."""

    model: str
    seq: int
    sent: float
    tokens: int


@dataclass
class _Model:
    requests: Bucket | None = None
    tokens: Bucket | None = None
    seq: int = 0
    synced_seq: int = -1
    sent_since_sync: list[tuple[int, int]] = field(default_factory=list)  # (seq, tokens) of calls after the last sync


class Pacer:
    """Per-model request and token buckets, shared by every battle thread of a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._models: dict[str, _Model] = {}
        self._waiting = 0  # calls waiting for room now
        self._last_waited = float("-inf")  # when a call last stopped waiting
        self.call_s = FIRST_CALL_S
        self.calls = 0

    def acquire(self, model: str, tokens: int, deadline: float, stop: threading.Event) -> Ticket:
        """Waits until `model`'s buckets can take one request of `tokens`, then debits them."""
        waiting = False
        try:
            while True:
                with self._lock:
                    state = self._models.setdefault(model, _Model())
                    now = time.monotonic()
                    wait = max(state.requests.wait_for(1, now) if state.requests else 0.0,
                               state.tokens.wait_for(tokens, now) if state.tokens else 0.0)
                    if wait <= 0:
                        for bucket, amount in ((state.requests, 1), (state.tokens, tokens)):
                            if bucket is not None:
                                bucket.take(amount, now)
                        state.seq += 1
                        state.sent_since_sync.append((state.seq, tokens))
                        self.calls += 1
                        return Ticket(model, state.seq, now, tokens)
                    if not waiting:
                        waiting, self._waiting = True, self._waiting + 1
                if now + wait + MIN_USEFUL_CALL_S > deadline:
                    raise DeadlineExceeded(f"{model}: the provider's rate limit leaves no room before the deadline")
                if stop.wait(wait):
                    raise Stopped("run stopped")
        finally:
            if waiting:
                with self._lock:
                    self._waiting -= 1
                    self._last_waited = time.monotonic()
                    self._changed.notify_all()

    def observe(self, ticket: Ticket, headers: Mapping[str, str] | None) -> None:
        """Takes the provider's figures from the answer to `ticket`'s call (a 429's too)."""
        if not headers:
            return
        limits = {kind: _figures(headers, kind) for kind in ("requests", "tokens")}
        with self._lock:
            state = self._models.setdefault(ticket.model, _Model())
            now = time.monotonic()
            self.call_s += 0.2 * (now - ticket.sent - self.call_s)
            fresh = ticket.seq > state.synced_seq
            later = [(seq, tokens) for seq, tokens in state.sent_since_sync if seq > ticket.seq]
            for kind, figures in limits.items():
                if figures is None:
                    continue
                limit, remaining = figures
                bucket = getattr(state, kind)
                if bucket is None:
                    bucket = Bucket(limit, remaining, now)
                    setattr(state, kind, bucket)
                bucket.limit = limit
                if fresh:  # an older answer than the last one synced says less about now
                    taken_since = len(later) if kind == "requests" else sum(tokens for _, tokens in later)
                    refilled = bucket.rate * (now - ticket.sent)
                    bucket.level, bucket.stamp = min(limit, remaining + refilled) - taken_since, now
            if fresh:
                state.synced_seq = ticket.seq
                state.sent_since_sync = later

    def wait_while_throttled(self, timeout: float, last_start: float) -> bool:
        """Blocks until another battle may start (see the module's doc), at most `timeout` seconds;
        `last_start` is when the previous one did. True when it may."""
        until = time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                if self._waiting:
                    wait = float("inf")  # until the waiting calls get through
                elif now - self._last_waited < self.call_s:
                    wait = self._last_waited + self.call_s - now
                elif now - self._last_waited < RAMP_S:
                    wait = last_start + self.call_s - now
                else:
                    wait = 0.0
                if wait <= 0:
                    return True
                if now >= until:
                    return False
                self._changed.wait(min(wait, until - now))


def _figures(headers: Mapping[str, str], kind: str) -> tuple[float, float] | None:
    try:
        limit = float(headers[f"x-ratelimit-limit-{kind}"])
        remaining = float(headers[f"x-ratelimit-remaining-{kind}"])
    except (KeyError, ValueError):
        return None
    if limit <= 0:
        return None
    return limit, max(0.0, min(remaining, limit))

"""Pacing to the provider's rate limits, learned from the `x-ratelimit-*` headers of its answers.

OpenAI answers every request, per model, with `x-ratelimit-limit-requests`,
`x-ratelimit-remaining-requests`, `x-ratelimit-reset-requests` and the same three for tokens. A
limit is a bucket of `limit` per window that refills continuously; a request takes one request
and its estimated tokens (the prompt, about 4 bytes a token, plus `max_tokens`) when it is
admitted, and is answered 429 when the bucket lacks them. OpenAI's window is a minute; other
OpenAI-compatible providers' differ (a second, ten seconds, a day).

`Pacer` keeps, per model, an estimate of both buckets: each call it lets through is debited at
once, the buckets refill at `limit / window` per second, and each answer's headers replace the
estimate with the provider's own figure (brought forward to now: refilled since the call was
sent, less the calls sent after it). Other processes' calls show up there too, so parallel runs
share one limit without talking to each other. A call waits until both buckets can take it with
a margin (MARGIN_SHARE of the bucket, or one call's worth if larger), so 429s stay the exception.

The window is learned from the same headers: `reset` is the time until the bucket is full again
("1s", "6m0s", "20ms", "1m30.5s"), so the bucket refills `limit - remaining` in `reset`, and the
window is `reset × limit / (limit - remaining)`. As `remaining` is rounded down, one answer's
figure is at most the true window: the pacer takes the largest of the last WINDOW_SAMPLES (a
minute until an answer says otherwise). A limit that is not finite or is below 1 is ignored.

The runner asks `wait_while_throttled` before each new battle. While every known bucket holds
SPARE_SHARE or more, the limit has room to spare and battles start freely. Otherwise, while calls
wait here, or did within about one call's time, the limit binds and no battle starts (it would
only wait with them, and risk the deadline); within RAMP_S of the last wait, battles start one
per call's time at most, so concurrency settles at about as many battles as the limit can feed;
further from any wait they start freely. With no headers (the simulator, a server that sends
none) nothing ever waits; before the first answer nothing is known, so the first calls of a run
go out unpaced (against a small bucket, a few of them may be answered 429 and retried).
"""
from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from lib.llm import MIN_USEFUL_CALL_S, DeadlineExceeded, Stopped

# A call is let through only if it leaves this share of the bucket, or the largest call taken if
# more, up to half the bucket (absorbs calls that the last answer did not show yet: other
# processes', or ours that reached the provider after it; and estimates a little short). In
# steady state the margin is never spent, so it costs no throughput; with a small bucket (a
# second's window) one call is a large share of it.
MARGIN_SHARE = 0.05
# How long a call takes, before any has been answered (then: a moving average of the answers).
FIRST_CALL_S = 0.5
# While every bucket holds at least this share, battles start freely: the limit has room to spare.
SPARE_SHARE = 0.5
# For this long after a call waited, battles start one per call's time at most.
RAMP_S = 10.0
# A call let through this long before another may reach the provider after it: a sync from the
# other's answer counts it as not shown yet (at worst one call's worth too little, like the margin).
SEND_SKEW_S = 0.1
# The window a limit refills over until an answer's `reset` says otherwise (OpenAI's minute).
DEFAULT_WINDOW_S = 60.0
# The window is the largest figure of this many recent answers (each is at most the true one).
WINDOW_SAMPLES = 16


@dataclass
class Bucket:
    limit: float
    level: float
    stamp: float
    window: float = DEFAULT_WINDOW_S
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW_SAMPLES))
    largest: float = 0.0  # the largest amount one call took

    @property
    def margin(self) -> float:
        return min(self.limit / 2, max(self.limit * MARGIN_SHARE, self.largest))

    @property
    def rate(self) -> float:
        return self.limit / self.window

    def learn_window(self, remaining: float, reset_s: float | None) -> None:
        """Takes one answer's figure of the window: `limit - remaining` refills in `reset_s`."""
        used = self.limit - remaining
        if reset_s is None or reset_s <= 0 or used < 1:
            return  # a full bucket (or no reset) says nothing about how fast it refills
        self.samples.append(reset_s * self.limit / used)
        self.window = max(self.samples)

    def available(self, now: float) -> float:
        return min(self.limit, self.level + self.rate * (now - self.stamp))

    def take(self, amount: float, now: float) -> None:
        self.level, self.stamp = self.available(now) - amount, now
        self.largest = max(self.largest, amount)

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until the bucket holds `amount` plus the margin (0: now)."""
        margin = self.margin
        want = min(amount, self.limit - margin) + margin
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
    # (seq, tokens, sent) of the calls after the last sync, and of those sent up to SEND_SKEW_S before it
    sent_since_sync: list[tuple[int, int, float]] = field(default_factory=list)


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
                        state.sent_since_sync.append((state.seq, tokens, now))
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
            # Not in the provider's figure: the calls sent after this one, and maybe those sent just
            # before it (threads let through in one order may reach the provider in another).
            later = [(seq, tokens, sent) for seq, tokens, sent in state.sent_since_sync
                     if seq > ticket.seq or (seq < ticket.seq and sent >= ticket.sent - SEND_SKEW_S)]
            for kind, figures in limits.items():
                if figures is None:
                    continue
                limit, remaining, reset_s = figures
                bucket = getattr(state, kind)
                if bucket is None:
                    bucket = Bucket(limit, remaining, now)
                    setattr(state, kind, bucket)
                if bucket.limit != limit:
                    bucket.limit = limit
                    bucket.samples.clear()  # figures for another limit
                bucket.learn_window(remaining, reset_s)
                if fresh:  # an older answer than the last one synced says less about now
                    taken_since = len(later) if kind == "requests" else sum(tokens for _, tokens, _ in later)
                    refilled = bucket.rate * (now - ticket.sent)
                    bucket.level, bucket.stamp = min(limit, remaining + refilled) - taken_since, now
            if fresh:
                state.synced_seq = ticket.seq
                state.sent_since_sync = later

    def _headroom(self, now: float) -> float:
        """The fullest share the emptiest known bucket holds now (0 to 1; 0 when none is known)."""
        buckets = [b for state in self._models.values() for b in (state.requests, state.tokens) if b is not None]
        return min((b.available(now) / b.limit for b in buckets), default=0.0)

    def wait_while_throttled(self, timeout: float, last_start: float) -> bool:
        """Blocks until another battle may start (see the module's doc), at most `timeout` seconds;
        `last_start` is when the previous one did. True when it may."""
        until = time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                if self._headroom(now) >= SPARE_SHARE:
                    wait = 0.0  # the buckets fill up faster than the battles use them
                elif self._waiting:
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


def _figures(headers: Mapping[str, str], kind: str) -> tuple[float, float, float | None] | None:
    """(limit, remaining, seconds until full or None) from the answer's headers; None when the limit
    is missing or unusable (not a number, not finite, or below 1: a subnormal 1e-322 would make the
    refill rate 0)."""
    try:
        limit = float(headers[f"x-ratelimit-limit-{kind}"])
        remaining = float(headers[f"x-ratelimit-remaining-{kind}"])
    except (KeyError, ValueError):
        return None
    if not math.isfinite(limit) or limit < 1 or math.isnan(remaining):
        return None
    return limit, max(0.0, min(remaining, limit)), parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str | None) -> float | None:
    """Seconds in OpenAI's (Go's) duration format: "1s", "6m0s", "20ms", "1m30.5s", "1h2m"; a bare
    number is seconds. None for anything else (absent, negative, not finite)."""
    if text is None:
        return None
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION.findall(text)
        if not parts or "".join(number + unit for number, unit in parts) != text:
            return None
        seconds = sum(float(number) * _UNIT_S[unit] for number, unit in parts)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None

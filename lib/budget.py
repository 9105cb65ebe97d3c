"""Prices and the cost cap: what a call may cost at worst, what it did cost, and the batch's cap.

Prices are USD per 1M tokens (`BUILTIN_PRICES`, extended or overridden by MODEL_PRICES). A call's
worst case is bounded before it is made (`prompt_token_bound`, `worst_case_cost`, rounded up to
the micro-dollar: the reservation stays conservative) and its real cost is computed from the usage
the provider reports (`usage_cost`), exactly: what is recorded is what the provider bills.
`CostCap` holds one holder's spend (a run, a scan…) against its cap, attempt by attempt, and writes
a worst-case pre-commit durably before an attempt is sent.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any

from lib.config import ConfigError

# How every message about a batch stopped by its cost cap begins (Slack, errors, the pause reason).
COST_CAP_REACHED = "Cost cap reached"
# USD per 1M tokens. MODEL_PRICES adds to or overrides this table.
BUILTIN_PRICES = {
    "gpt-4o": {"input": "2.50", "cached_input": "1.25", "output": "10.00"},
    "gpt-4o-2024-08-06": {"input": "2.50", "cached_input": "1.25", "output": "10.00"},
    "gpt-4o-2024-11-20": {"input": "2.50", "cached_input": "1.25", "output": "10.00"},
    "gpt-4o-mini": {"input": "0.15", "cached_input": "0.075", "output": "0.60"},
    "gpt-4o-mini-2024-07-18": {"input": "0.15", "cached_input": "0.075", "output": "0.60"},
    "gpt-4.1": {"input": "2.00", "cached_input": "0.50", "output": "8.00"},
    "gpt-4.1-mini": {"input": "0.40", "cached_input": "0.10", "output": "1.60"},
    "gpt-4.1-nano": {"input": "0.10", "cached_input": "0.025", "output": "0.40"},
    "o4-mini": {"input": "1.10", "cached_input": "0.275", "output": "4.40"},
    "gpt-5": {"input": "1.25", "cached_input": "0.125", "output": "10.00"},
    "gpt-5-mini": {"input": "0.25", "cached_input": "0.025", "output": "2.00"},
    "gpt-5-nano": {"input": "0.05", "cached_input": "0.005", "output": "0.40"},
}
PER_MILLION = Decimal(1_000_000)
MICRO_DOLLAR = Decimal("0.000001")
# The scale of the recorded cost columns (sandbox_battles.cost_usd, training_runs.total_cost are
# numeric(20, 12)). Built-in prices give at most 9 decimals, so a real cost is never rounded; a
# price in MODEL_PRICES with more than 6 decimals is rounded here, once, as the database would.
COST_QUANTUM = Decimal("1e-12")
# A model's prices in USD per 1M tokens: `input`, `cached_input`, `output`.
type Price = dict[str, Decimal]
# Chat formatting adds a few tokens per message and for the reply; 16 is a generous bound.
TOKENS_PER_MESSAGE_OVERHEAD = 16


def price_for(model: str, overrides: dict[str, Price]) -> Price:
    """The model's prices as Decimals per 1M tokens; a model with no price is refused."""
    if model in overrides:
        return overrides[model]
    if model in BUILTIN_PRICES:
        return {kind: Decimal(value) for kind, value in BUILTIN_PRICES[model].items()}
    raise ConfigError(
        f"no price for model {model!r}: add it to MODEL_PRICES, e.g. "
        f'{{"{model}": {{"input": 2.5, "cached_input": 1.25, "output": 10}}}} (USD per 1M tokens)'
    )


def _micro_ceiling(amount: Decimal) -> Decimal:
    return amount.quantize(MICRO_DOLLAR, rounding=ROUND_CEILING)


def prompt_token_bound(messages: list[dict[str, str]], response_format: dict[str, Any] | None = None) -> int:
    """An upper bound on prompt tokens: a token covers at least one UTF-8 byte."""
    total = sum(len(m["content"].encode("utf-8")) + TOKENS_PER_MESSAGE_OVERHEAD for m in messages)
    if response_format is not None:
        total += len(json.dumps(response_format).encode("utf-8"))
    return total + TOKENS_PER_MESSAGE_OVERHEAD


def estimated_tokens(messages: list[dict[str, str]], response_format: dict[str, Any] | None, max_tokens: int) -> int:
    """What a provider's rate limiter counts for a request: its prompt at about 4 bytes a token,
    plus `max_tokens` (OpenAI counts the tokens a request may use when it admits it)."""
    return -(-prompt_token_bound(messages, response_format) // 4) + max_tokens


def worst_case_cost(prompt_tokens: int, max_tokens: int, price: Price) -> Decimal:
    return _micro_ceiling((prompt_tokens * price["input"] + max_tokens * price["output"]) / PER_MILLION)


def billing_note(recorded: object, billed_up_to: object) -> str | None:
    """What reported spend adds when the provider may have billed more than was recorded."""
    recorded, billed = Decimal(str(recorded)), Decimal(str(billed_up_to))
    if billed <= recorded:
        return None
    return f"up to ${_micro_ceiling(billed)} may have been billed (calls that timed out or were cut off)"


def usage_cost(prompt_tokens: int, cached_tokens: int, completion_tokens: int, price: Price) -> Decimal:
    """The real cost of one call, cached input at the cached price: usage × price, not rounded up."""
    uncached = prompt_tokens - cached_tokens
    exact = (uncached * price["input"] + cached_tokens * price["cached_input"]
             + completion_tokens * price["output"]) / PER_MILLION
    return exact.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)


# A durable pre-commit covers the attempt being sent plus this many more of the same worst case (or
# a twentieth of the cap, if larger): a run writes its committed figure a few times, not per call.
PRECOMMIT_ATTEMPTS = 4
PRECOMMIT_SHARE_OF_CAP = Decimal(20)


class CostCapClosed(Exception):
    """The holder's spend was settled: no attempt may be reserved after that."""


class CostCap:
    """One holder's spend (a run, a scan, a persona generation, a referee check) against its cap.

    Reserved per attempt: an attempt reserves its worst case before it is sent. When the answer is
    read it settles at its real cost; when it was never sent (refused before the request was
    written) its reservation is released; when it may have been billed without an answer (a
    timeout, a connection dropped after sending, a 5xx) it stays spent at its worst case
    (`committed`). An attempt whose worst case does not fit is refused and the cap is reached
    (`tripped`).

    `durable(amount)` (optional) writes a worst-case pre-commit where a later process can read it
    (training_runs.committed_cost, training_spends.committed): before an attempt is sent, what is
    committed and reserved is covered by what was written, so a process that dies mid-call has
    already said what it may have been billed.
    """

    def __init__(self, cap: Decimal, reached: str | None = None, durable: Callable[[Decimal], None] | None = None,
                 parent: CostCap | None = None):
        self.cap = Decimal(cap)
        # An inner limit (a scan's re-score cap) inside its holder's block: an attempt fits both.
        self.parent = parent
        # When the cap is a block of a daily or monthly budget: the message for reaching it.
        self.reached = reached
        self.committed = Decimal(0)  # may have been billed: real costs, plus the worst case of unanswered attempts
        self.recorded = Decimal(0)  # what answers reported (the provider's usage)
        self.reserved = Decimal(0)  # attempts in flight, at their worst case
        self.tripped = False
        self.trip_reason: str | None = None
        self._durable = durable
        self._written = Decimal(0)
        self._closed = False
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    def reserve(self, amount: Decimal) -> bool:
        """Reserves one attempt's worst case; False (and tripped) when it does not fit. Returns
        only once the pre-commit covering it is durable (a failed write releases it and raises)."""
        with self._lock:
            if self._closed:
                raise CostCapClosed("the spend was already settled")
            if self.tripped:
                return False
            if self.committed + self.reserved + amount > self.cap:
                self.tripped = True
                self.trip_reason = self.reached or (
                    f"{COST_CAP_REACHED}: the next call (worst case ${amount}) would take the batch past "
                    f"its ${self.cap} cap (${self.committed} spent, ${self.reserved} reserved)"
                )
                return False
            self.reserved += amount
            need = self.committed + self.reserved
            target = min(self.cap, need + max(amount * PRECOMMIT_ATTEMPTS, self.cap / PRECOMMIT_SHARE_OF_CAP))
        if self.parent is not None:
            try:
                fits = self.parent.reserve(amount)
            except BaseException:
                self._end(amount, Decimal(0), Decimal(0), inner_only=True)
                raise
            if not fits:
                with self._lock:
                    self.reserved -= amount
                    self.tripped, self.trip_reason = True, self.parent.trip_reason
                return False
        if self._durable is None:
            return True
        try:
            with self._write_lock:
                if self._written < need:  # another thread may have covered this attempt meanwhile
                    self._durable(target)
                    self._written = max(self._written, target)
        except BaseException:
            self.release(amount)
            raise
        return True

    def release(self, reserved: Decimal) -> None:
        """An attempt that was never sent: nothing was billed."""
        self._end(reserved, Decimal(0), Decimal(0))

    def settle(self, reserved: Decimal, actual: Decimal) -> None:
        """An attempt answered: its real cost, from the usage the provider reported."""
        self._end(reserved, actual, actual)

    def keep(self, reserved: Decimal) -> None:
        """An attempt sent and never answered (timeout, dropped connection, 5xx): the provider may
        have billed it, so it stays spent at its worst case."""
        self._end(reserved, reserved, Decimal(0))

    def _end(self, reserved: Decimal, committed: Decimal, recorded: Decimal, inner_only: bool = False) -> None:
        # A provider reporting more than the bound allows is recorded as reported, and trips.
        if self.parent is not None and not inner_only:
            self.parent._end(reserved, committed, recorded)
        with self._lock:
            self.reserved -= reserved
            self.committed += committed
            self.recorded += recorded
            if self.committed > self.cap and not self.tripped:
                self.tripped = True
                self.trip_reason = self.reached or (
                    f"{COST_CAP_REACHED}: the provider billed ${self.committed}, past the ${self.cap} cap")

    def close(self) -> Decimal:
        """Refuses any further attempt; returns what may have been billed (attempts still in flight
        at their worst case), the figure the holder's spend is settled at."""
        with self._lock:
            self._closed = True
            return self.committed + self.reserved

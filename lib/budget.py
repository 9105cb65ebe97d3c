"""Prices and the cost cap: what a call may cost at worst, what it did cost, and the batch's cap.

Prices are USD per 1M tokens (`BUILTIN_PRICES`, extended or overridden by MODEL_PRICES). A call's
worst case is bounded before it is made (`prompt_token_bound`, `worst_case_cost`, rounded up to
the micro-dollar: the reservation stays conservative) and its real cost is computed from the usage
the provider reports (`usage_cost`), exactly: what is recorded is what the provider bills.
`Budget` holds one batch's spend against its cost cap (KILL_SWITCH_THRESHOLD_USD).
"""
from __future__ import annotations

import json
import threading
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


def usage_cost(prompt_tokens: int, cached_tokens: int, completion_tokens: int, price: Price) -> Decimal:
    """The real cost of one call, cached input at the cached price: usage × price, not rounded up."""
    uncached = prompt_tokens - cached_tokens
    exact = (uncached * price["input"] + cached_tokens * price["cached_input"]
             + completion_tokens * price["output"]) / PER_MILLION
    return exact.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)


class Budget:
    """A batch's spend against its cost cap, shared by the battle threads.

    A call reserves its worst case before it is made and settles at its real cost after. A call
    whose worst case does not fit is refused and the cost cap is reached (`tripped`). A call that
    fails after its request left (a timeout may still be billed) keeps its reservation, so real
    spend stays bounded too; one that never left releases it.
    """

    def __init__(self, cap: Decimal, reached: str | None = None):
        self.cap = Decimal(cap)
        # When the cap is the run's block of a daily or monthly budget: the message for reaching it.
        self.reached = reached
        self.committed = Decimal(0)
        self.reserved = Decimal(0)
        self.tripped = False
        self.trip_reason: str | None = None
        self._lock = threading.Lock()

    def reserve(self, amount: Decimal) -> bool:
        with self._lock:
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
            return True

    def settle(self, reserved: Decimal, actual: Decimal) -> None:
        # A provider reporting more than the bound allows is recorded as reported, and trips.
        with self._lock:
            self.reserved -= reserved
            self.committed += actual
            if self.committed > self.cap and not self.tripped:
                self.tripped = True
                self.trip_reason = self.reached or (
                    f"{COST_CAP_REACHED}: the provider billed ${self.committed}, past the ${self.cap} cap")

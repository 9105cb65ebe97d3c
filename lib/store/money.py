"""The queries of money: blocks of the daily and monthly budget, and what may have been billed.

`MoneyQueries` is part of `lib.store.queries.Queries`; the budget's shapes live here with it.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from lib.budget import billing_note
from lib.store import Store


class BudgetPeriod(TypedDict):
    """One UTC day or month: recorded spend, what the provider may have billed (`billedUpTo`: calls
    that timed out or were cut off at their worst case), the unspent blocks of holders in progress,
    the limit."""

    spent: float
    billedUpTo: float
    note: NotRequired[str]  # "up to $X may have been billed (…)", only where billedUpTo passes spent
    reserved: float
    limit: float | None  # null: no budget for this period
    resetsAt: str


class BudgetState(TypedDict):
    day: BudgetPeriod
    month: BudgetPeriod


class BudgetGrant(BudgetState, total=False):
    """The block a run took: `block` (its cost cap for this run), `limitedBy` (`cap`, `day` or
    `month`) and `exhausted` (the message for when a day- or month-limited block is spent)."""

    status: str
    block: float
    limitedBy: str
    exhausted: str | None
    id: str  # the spend's id (`take_budget` only)
    error: str  # a refusal's ("Daily budget reached") and its `reason` (the figures and the reset)
    reason: str | None  # and a `paused` answer's: the pause's reason


def note_billing(state: BudgetState) -> None:
    """Each period says, where it differs from the recorded spend, what may have been billed."""
    for period in (state["day"], state["month"]):
        note = billing_note(period["spent"], period["billedUpTo"])
        if note:
            period["note"] = note


class MoneyQueries:
    store: Store

    def _one[T](self, shape: type[T], fn: str, *, deadline: float | None = None, **args: Any) -> T:
        raise NotImplementedError  # Queries' own

    def commit_cost(self, holder_id: str, committed: Decimal, *, final: bool = False,
                    deadline: float | None = None) -> None:
        """Raises what a run or spend may have been billed (a pre-commit); `final` sets the exact figure."""
        self.store.call_void("training_commit_cost", deadline=deadline, p_holder_id=holder_id,
                             p_committed=committed, p_final=final)

    def take_budget(self, purpose: str, cap: Decimal, daily_budget: Decimal | None,
                    monthly_budget: Decimal | None, deadline_ms: int, simulated: bool, *,
                    refuse_when_paused: bool = False, deadline: float | None = None) -> BudgetGrant:
        """A block of the day's and month's budget for model calls outside a run (`purpose`: scout,
        personas, referee_check, …), under the runs' lock; the grant (with the spend's `id`) or the
        refusal; with `refuse_when_paused`, status `paused` (and its `reason`) while training is paused."""
        return self._one(BudgetGrant, "training_take_budget", deadline=deadline, p_purpose=purpose, p_cap=cap,
                         p_daily_budget=daily_budget, p_monthly_budget=monthly_budget,
                         p_deadline_ms=deadline_ms, p_simulated=simulated, p_refuse_when_paused=refuse_when_paused)

    def close_spend(self, spend_id: str, committed: Decimal, recorded: Decimal, *,
                    deadline: float | None = None) -> None:
        self.store.call_void("training_close_spend", deadline=deadline, p_spend_id=spend_id,
                             p_committed=committed, p_recorded=recorded)

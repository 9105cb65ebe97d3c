"""Model calls outside a run (a scout scan, a persona generation, a referee check, the proposer's
turn, the canary's verdicts) take a block of the daily and monthly budget, as a run does: under the
same lock, refused with the same message. The training loop's own calls (the scout, the proposer,
the canary's verdicts) are also refused while training is paused (`Paused`; read in the same call,
under the same lock, that takes the block): a pause stops the loop's spending, not only its runs; a
person's own commands (personas, referee check) still run.

`spend(...)` takes the block (a `training_spends` row), yields the holder's `CostCap` (the block;
inner limits such as a scan's re-score cap are `CostCap(…, parent=holder)`), writes its worst-case
pre-commits before attempts are sent, and settles what may have been billed when the work ends.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from lib.budget import CostCap
from lib.config import Settings
from lib.llm import LLMError
from lib.store import Store
from lib.store.money import BudgetGrant
from lib.store.queries import Queries

# The purposes that belong to the training loop: a pause stops them too.
LOOP_PURPOSES = frozenset({"scout", "proposer", "canary_verdicts"})


class Paused(LLMError):
    """Training is paused: the loop's calls wait until it resumes."""

    def __init__(self, reason: str | None):
        super().__init__(f"Training paused ({reason or 'no reason given'}): its model calls wait until it resumes",
                         billed=False)


class BudgetReached(LLMError):
    """The daily or monthly budget has no block left for these calls (the run refusal's words)."""

    def __init__(self, refusal: BudgetGrant):
        super().__init__(f"{refusal['error']}: {refusal['reason']}", billed=False)
        self.refusal = refusal


@contextmanager
def spend(settings: Settings, store: Store, purpose: str, cap: Decimal, deadline: float,
          simulated: bool) -> Iterator[CostCap]:
    """The block for `purpose`'s calls, at most `cap`; raises `BudgetReached` when the budget is spent,
    and `Paused` for a loop purpose while training is paused."""
    queries = Queries(store)
    grant = queries.take_budget(purpose, Decimal(cap), settings.daily_budget_usd, settings.monthly_budget_usd,
                                max(1, int((deadline - time.monotonic()) * 1000)), simulated,
                                refuse_when_paused=purpose in LOOP_PURPOSES, deadline=deadline)
    if grant["status"] == "paused":
        raise Paused(grant.get("reason"))
    if grant["status"] != "granted":
        raise BudgetReached(grant)
    holder = CostCap(Decimal(str(grant["block"])), grant.get("exhausted"),
                     durable=lambda amount: queries.commit_cost(grant["id"], amount, deadline=deadline + 1))
    try:
        yield holder
    finally:
        # Attempts still in flight count at their worst case: the provider may finish and bill them.
        queries.close_spend(grant["id"], holder.close(), holder.recorded, deadline=max(deadline, time.monotonic()) + 1)

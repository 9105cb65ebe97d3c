"""The canary's head-to-head verdicts (CANARY_VERDICT=head_to_head), judged after a run.

Before the canary's look, each complete pair without a verdict gets one `lib.head_to_head` call
(the calls' order a fair coin), paid from a block of the budget like the scout's
(`lib.spending.spend`), and its verdict (+1, 0, −1 from the candidate's side) is stored on the
candidate's battle with the order the calls were shown in. A call that fails ends the judging
for this look (the pairs left are judged at the next); a failure that is the pair's own (the
judge's answer, or the provider refusing that request) is also counted on the pair, which then
waits behind the pairs the judge has not failed on, and after three failures is left out
(the database's limit), so one pair the judge cannot judge never blocks the others.
The look decides on the verdicts judged so far.
"""
from __future__ import annotations

import logging
import secrets
from decimal import Decimal

from lib import head_to_head
from lib.config import Settings
from lib.llm import LLM, CallContext, DeadlineExceeded, LLMError, ProviderRefused, Stopped, Usage
from lib.log import log
from lib.spending import BudgetReached, spend
from lib.store import Store
from lib.store.queries import Queries

# The most one look spends on verdicts, and the most pairs it judges (the rest wait for the next).
VERDICT_CAP_USD = Decimal("0.50")
VERDICTS_PER_LOOK = 50
PURPOSE = "canary_verdicts"
# Failures that are the run's or the account's, not the pair's: they do not count against the pair.
NOT_THE_PAIRS = (BudgetReached, DeadlineExceeded, Stopped, ProviderRefused)


def judge_new_pairs(settings: Settings, store: Store, llm: LLM, *, judge_by: float, simulated: bool,
                    errors: list[str]) -> int:
    """Judges the candidate's complete pairs that have no verdict yet, until `judge_by`
    (time.monotonic()); returns how many verdicts were stored. A failure ends the judging (the
    pairs left wait for the next look) and is added to `errors`."""
    queries = Queries(store)
    pending = queries.canary_unjudged(VERDICTS_PER_LOOK, deadline=judge_by)
    if not pending:
        return 0
    judged = 0
    pair = pending[0]
    try:
        with spend(settings, store, PURPOSE, VERDICT_CAP_USD, judge_by, simulated) as block:
            ctx = CallContext.for_cap(block, judge_by)
            for pair in pending:
                candidate_first = secrets.randbelow(2) == 1
                ids = (pair["candidateBattleId"], pair["activeBattleId"])
                shown = ids if candidate_first else ids[::-1]
                result = head_to_head.judge(llm, ctx, settings.referee_model, pair["candidateTranscript"],
                                            pair["activeTranscript"], candidate_first, Usage(), seed="|".join(shown))
                queries.record_pair_verdict(pair["candidateBattleId"], result.verdict, candidate_first,
                                            deadline=judge_by + 1)
                judged += 1
    except LLMError as exc:  # BudgetReached included: the spend's refusal in the run's words
        left = len(pending) - judged
        counted = ""
        if not isinstance(exc, NOT_THE_PAIRS) and judged < len(pending):
            failures = queries.record_pair_verdict_failure(pair["candidateBattleId"], deadline=judge_by + 1)
            counted = f"; the judge has failed on this pair {failures} time(s)"
        errors.append(f"Canary verdicts: {exc} ({left} pair(s) left unjudged, judged at the next look{counted})")
        log("canary_verdicts_failed", level=logging.WARNING, judged=judged, left=left, error=type(exc).__name__)
    if judged:
        log("canary_verdicts", judged=judged)
    return judged

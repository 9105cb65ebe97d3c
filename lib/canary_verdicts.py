"""The canary's head-to-head verdicts (CANARY_VERDICT=head_to_head), judged after a run.

Before the canary's look, each complete pair without a verdict gets one `lib.head_to_head` call
(the calls' order a fair coin), paid from a block of the budget like the scout's
(`lib.spending.spend`), and its verdict (+1, 0, −1 from the candidate's side) is stored on the
candidate's battle. A pair whose call fails stays unjudged and is judged at the next look; the
look decides on the verdicts judged so far.
"""
from __future__ import annotations

import logging
import secrets
from decimal import Decimal

from lib import head_to_head
from lib.config import Settings
from lib.llm import LLM, CallContext, LLMError, Usage
from lib.log import log
from lib.spending import spend
from lib.store import Store
from lib.store.queries import Queries

# The most one look spends on verdicts, and the most pairs it judges (the rest wait for the next).
VERDICT_CAP_USD = Decimal("0.50")
VERDICTS_PER_LOOK = 50
PURPOSE = "canary_verdicts"


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
        errors.append(f"Canary verdicts: {exc} ({left} pair(s) left unjudged, judged at the next look)")
        log("canary_verdicts_failed", level=logging.WARNING, judged=judged, left=left, error=type(exc).__name__)
    if judged:
        log("canary_verdicts", judged=judged)
    return judged

"""The canary's head-to-head verdicts (CANARY_VERDICT=head_to_head), judged after a run.

Before the canary's look, each complete pair without a verdict gets one `lib.head_to_head` call
(the calls' order a fair coin), paid from a block of the budget like the scout's
(`lib.spending.spend`), and its verdict (+1, 0, −1 from the candidate's side) is stored on the
candidate's battle with the order the calls were shown in. A call that fails ends the judging
for this look (the pairs left are judged at the next); a failure that is the pair's own (the
judge's answer, or the provider rejecting that request) is also counted on the pair, which then
waits behind the pairs the judge has not failed on, and after three failures is left out
(the database's limit), so one pair the judge cannot judge never blocks the others. The budget,
the deadline or a pause is not the pair's. Nor is an outage: a call whose every attempt failed
with an error worth retrying (`ProviderUnavailable`: no connection, 408, 409, 429, 5xx) counts
against its pair only when the provider answered another pair's call in the same look (before
it, or the next pair's, which such a failure then goes on to), so an outage, however long, leaves
no pair out, and a request the provider keeps failing on still does not block the others.
The look decides on the verdicts judged so far.
"""
from __future__ import annotations

import logging
import secrets
import time
from decimal import Decimal

from lib import head_to_head
from lib.config import Settings
from lib.llm import (
    LLM,
    BudgetExceeded,
    CallContext,
    DeadlineExceeded,
    LLMError,
    ProviderRefused,
    ProviderUnavailable,
    Stopped,
    Usage,
)
from lib.log import log
from lib.spending import BudgetReached, Paused, spend
from lib.store import Store, StoreError
from lib.store.queries import Queries, UnjudgedPair

# The most one look spends on verdicts, and the most pairs it judges (the rest wait for the next).
VERDICT_CAP_USD = Decimal("0.50")
VERDICTS_PER_LOOK = 50
PURPOSE = "canary_verdicts"
# Failures that are the run's or the account's, not the pair's: they do not count against the pair.
NOT_THE_PAIRS = (BudgetReached, Paused, BudgetExceeded, DeadlineExceeded, Stopped, ProviderRefused, ProviderUnavailable)
# A claim outlives the look's time by this much: a look that dies mid-call frees its pair after it.
CLAIM_MARGIN_S = 30.0


def judge_new_pairs(settings: Settings, store: Store, llm: LLM, *, judge_by: float, simulated: bool,
                    errors: list[str]) -> int:
    """Judges the candidate's complete pairs that have no verdict yet, one claimed pair at a time
    (runs finishing together never judge the same pair), until `judge_by` (time.monotonic()) or
    VERDICTS_PER_LOOK; returns how many verdicts were stored. A failure ends the judging (the pairs
    left wait for the next look) and is added to `errors`; but the look's first ProviderUnavailable,
    before any answer, goes on to the next pair, whose call tells an outage from the pair's own trouble
    (an outage is said once)."""
    queries = Queries(store)

    def claim_next() -> UnjudgedPair | None:
        claimed = queries.canary_unjudged(1, claim_s=max(0.0, judge_by - time.monotonic()) + CLAIM_MARGIN_S,
                                          deadline=judge_by)
        return claimed[0] if claimed else None

    pair = claim_next()
    if pair is None:
        return 0
    judged = 0
    # The pair whose call failed for want of the provider before any call of this look was answered:
    # kept claimed to the end of the look, and then counted against only if another call was answered.
    suspect: tuple[UnjudgedPair, ProviderUnavailable] | None = None
    ended_by: LLMError | None = None
    try:
        with spend(settings, store, PURPOSE, VERDICT_CAP_USD, judge_by, simulated) as block:
            ctx = CallContext.for_cap(block, judge_by)
            while pair is not None:
                candidate_first = secrets.randbelow(2) == 1
                ids = (pair["candidateBattleId"], pair["activeBattleId"])
                shown = ids if candidate_first else ids[::-1]
                try:
                    result = head_to_head.judge(llm, ctx, settings.referee_model, pair["candidateTranscript"],
                                                pair["activeTranscript"], candidate_first, Usage(),
                                                seed="|".join(shown))
                except ProviderUnavailable as exc:
                    if judged or suspect:
                        raise  # an answer this look: this pair's own; two in a row: the provider is down
                    suspect, pair = (pair, exc), claim_next()
                    continue
                queries.record_pair_verdict(pair["candidateBattleId"], result.verdict, candidate_first,
                                            deadline=judge_by + 1)
                judged += 1
                pair = claim_next() if judged < VERDICTS_PER_LOOK else None
    except LLMError as exc:  # BudgetReached included: the spend's refusal in the run's words
        ended_by = exc
        own = not isinstance(exc, NOT_THE_PAIRS) or (isinstance(exc, ProviderUnavailable) and judged > 0)
        errors.append(f"Canary verdicts: {exc} ({judged} judged this look; the pairs left are judged at the next "
                      f"look{_released(queries, pair, own, judge_by)})")
        log("canary_verdicts_failed", level=logging.WARNING, judged=judged, error=type(exc).__name__)
    if suspect is not None:
        said = _released(queries, suspect[0], judged > 0, judge_by)
        if judged:
            errors.append(f"Canary verdicts: {suspect[1]} (the provider answered this look's other calls{said})")
        elif ended_by is None:  # no other pair to tell by: an outage as far as this look can tell
            errors.append(f"Canary verdicts: {suspect[1]} (0 judged this look; the pairs left are judged at the "
                          f"next look{said})")
    if judged:
        log("canary_verdicts", judged=judged)
    return judged


def _released(queries: Queries, pair: UnjudgedPair | None, own: bool, judge_by: float) -> str:
    """Frees the pair whose call failed for the next look, counting the failure when it is the
    pair's `own`; says so for the run's errors. A database failure here only delays the pair."""
    if pair is None:
        return ""
    try:
        failures = queries.release_pair(pair["candidateBattleId"], failed=own,
                                        deadline=max(judge_by, time.monotonic()) + 1)
    except StoreError as store_exc:
        log("canary_verdict_release_failed", level=logging.WARNING, error=str(store_exc))
        return "; the pair stays claimed for a while: the database did not answer"
    return f"; the judge has failed on this pair {failures} time(s)" if own else ""

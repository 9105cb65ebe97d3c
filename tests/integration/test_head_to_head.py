"""The head-to-head verdict through the real `openai` SDK and the fake OpenAI server, and its
position bias removed by the fair-coin order."""
import time
from decimal import Decimal

import pytest

from lib import canary
from lib.app import make_llm
from lib.head_to_head import HEAD_TO_HEAD_BETS, HEAD_TO_HEAD_BOUND, judge, position_bias
from lib.llm import BudgetExceeded, CallContext, LLMError, Usage


def call(effect: int) -> list[dict]:
    return [{"speaker": "closer", "text": f"We put it in writing. (effect {effect:+d})"},
            {"speaker": "persona", "text": "Go on."}]


def context(cap: str = "5") -> CallContext:
    return CallContext.for_cap(Decimal(cap), time.monotonic() + 30)


def test_one_call_sees_both_transcripts_and_the_verdict_is_the_candidates_whichever_order(make_settings,
                                                                                          fake_openai):
    llm = make_llm(make_settings())
    usage = Usage()
    for candidate_first in (True, False):
        better = judge(llm, context(), "gpt-4o", call(+12), call(0), candidate_first, usage)
        worse = judge(llm, context(), "gpt-4o", call(-12), call(0), candidate_first, usage)
        assert (better.verdict, worse.verdict) == (1, -1)
    requests = [e for e in fake_openai.log if e["schema"] == "head_to_head"]
    assert len(requests) == 4 and usage.cost > 0
    shown = requests[0]["messages"][-1]["content"]
    assert shown.startswith("CALL A:\nCLOSER: We put it in writing. (effect +12)") and "\n\nCALL B:\n" in shown
    assert "(effect +0)" in requests[1]["messages"][-1]["content"].split("CALL B:")[1]


def test_a_judge_that_prefers_the_first_call_is_measured_and_cancelled_by_the_random_order(make_settings,
                                                                                          fake_openai):
    fake_openai.head_to_head_lean = "A"
    llm = make_llm(make_settings())
    verdicts = [judge(llm, context(), "gpt-4o", call(0), call(0), first, Usage()) for first in (True, False) * 5]
    assert position_bias(verdicts) == 1.0
    # Equal calls: the lean goes to the candidate as often as to the active version.
    assert sum(v.verdict for v in verdicts) == 0 and {v.verdict for v in verdicts} == {1, -1}


def test_a_malformed_answer_is_retried_once_then_fails(make_settings, fake_openai):
    fake_openai.fail_next("malformed", count=2)
    with pytest.raises(LLMError, match="malformed head-to-head answer twice"):
        judge(make_llm(make_settings()), context(), "gpt-4o", call(5), call(0), True, Usage())


def test_the_call_is_held_to_the_cost_cap_like_every_call(make_settings, fake_openai):
    with pytest.raises(BudgetExceeded):
        judge(make_llm(make_settings()), context("0.000001"), "gpt-4o", call(5), call(0), True, Usage())
    assert not [e for e in fake_openai.log if e["schema"] == "head_to_head"]


def test_verdicts_decide_through_the_same_rule_with_their_own_stakes():
    wins = [1.0, 1.0, 0.0, 1.0, -1.0] * 12  # the candidate better in 3 pairs of 5
    look = canary.decide(wins, max_pairs=100, bound=HEAD_TO_HEAD_BOUND, bets=HEAD_TO_HEAD_BETS)
    assert look.decision == "adopted" and 0 < look.ci95[0] < 0.4 < look.ci95[1] <= 1
    with pytest.raises(ValueError, match=r"in \[-1, 1\]"):
        canary.decide([2.0], max_pairs=100, bound=HEAD_TO_HEAD_BOUND, bets=HEAD_TO_HEAD_BETS)

"""The referee's verdict: our code computes the total; the model's answer is checked, never trusted."""
import json
from decimal import Decimal

import pytest

from lib.battle import closer_system_prompt
from lib.budget import prompt_token_bound, usage_cost, worst_case_cost
from lib.referee import CRITERIA, MalformedVerdict, parse_verdict, total_score


def verdict(**changes):
    body = {"scores": {name: 80 for name in CRITERIA}, "feedback": "ok", "winning_rebuttal": "line",
            "seller_agreed": True}
    body.update(changes)
    return json.dumps(body)


def test_weights_sum_to_one_and_the_total_is_ours():
    assert sum(CRITERIA.values()) == Decimal(1)
    scores = {name: 100 for name in CRITERIA} | {"objection_handling": 50}
    assert total_score(scores) == Decimal("85.00")
    answer = json.loads(verdict(scores=scores))
    answer["total"] = 100  # a model's own arithmetic is ignored
    assert parse_verdict(json.dumps(answer)).total == Decimal("85.00")


@pytest.mark.parametrize("text, problem", [
    ("{not json", "not JSON"),
    ('{"scores": {"opening": 1' + "0" * 4400 + "}}", "integer too long"),
    ("[" * 3000 + "]" * 3000, "nested too deep"),
    ("[1, 2]", "no scores object"),
    (verdict(scores={name: 80 for name in list(CRITERIA)[1:]}), "is not an integer from 0 to 100"),
    (verdict(scores={name: 101 for name in CRITERIA}), "is not an integer from 0 to 100"),
    (verdict(scores={name: True for name in CRITERIA}), "is not an integer from 0 to 100"),
    (verdict(scores={name: 80.5 for name in CRITERIA}), "is not an integer from 0 to 100"),
    (verdict(feedback=None), "'feedback' is not a string"),
    (verdict(seller_agreed="yes"), "'seller_agreed' is not a boolean"),
])
def test_malformed_verdicts_are_refused_with_the_reason(text, problem):
    with pytest.raises(MalformedVerdict, match=problem):
        parse_verdict(text)


def test_tactics_are_appended_in_the_order_given():
    prompt = closer_system_prompt("Base.", [{"tactic_text": "First."}, {"tactic_text": "Second."}])
    assert prompt.startswith("Base.") and prompt.index("First.") < prompt.index("Second.")
    assert closer_system_prompt("Base.", []) == "Base."


def test_the_cost_bound_covers_any_honest_usage():
    messages = [{"role": "system", "content": "Ünïcödé " * 50}, {"role": "user", "content": "hi"}]
    price = {"input": Decimal("2.5"), "cached_input": Decimal("1.25"), "output": Decimal("10")}
    bound = prompt_token_bound(messages)
    assert bound >= sum(len(m["content"].encode()) for m in messages)
    worst = worst_case_cost(bound, 300, price)
    assert usage_cost(bound, 0, 300, price) <= worst
    assert usage_cost(bound, bound, 300, price) < worst, "cached input is cheaper"
    assert usage_cost(1, 0, 1, price) == Decimal("0.0000125"), "exact, not rounded up to the micro-dollar"
    assert worst_case_cost(1, 1, price) == Decimal("0.000013"), "the reservation is rounded up"

"""The canary's decision rule and, in small, the simulation that proves its error rates
(`python -m bench.canary` prints the full one)."""
import json
import random

from bench.canary import naive_adoption, run_canaries, simulated_pairs
from lib import canary


def test_no_decision_before_the_minimum_number_of_pairs():
    assert canary.decide([30.0] * (canary.MIN_PAIRS - 1), max_pairs=100).decision == "pending"
    look = canary.decide([30.0, 31.0] * canary.MIN_PAIRS, max_pairs=100)
    assert look.decision == "adopted" and look.pairs == 2 * canary.MIN_PAIRS and look.ci95[0] > 0


def test_clear_losses_roll_back_and_noise_at_the_limit_is_inconclusive():
    rng = random.Random(3)
    assert canary.decide([rng.gauss(-15, 5) for _ in range(20)], max_pairs=100).decision == "rolled_back"
    noise = [rng.gauss(0, 10) for _ in range(40)]
    assert canary.decide(noise, max_pairs=100).decision == "pending"
    at_limit = canary.decide(noise, max_pairs=40)
    assert at_limit.decision == "inconclusive" and at_limit.ci95[0] < 0 < at_limit.ci95[1]


def test_the_interval_is_wider_than_a_fixed_n_one_and_narrows_with_more_pairs():
    widths = [canary.half_width(n, 10.0) for n in (10, 20, 50, 100, 400)]
    assert widths == sorted(widths, reverse=True)
    assert all(w > 1.96 * 10.0 / n ** 0.5 for w, n in zip(widths, (10, 20, 50, 100, 400)))


def test_too_few_pairs_have_no_interval():
    assert canary.decide([], 100) == canary.Look("pending", 0, None, None)
    assert canary.decide([4.0], 100).ci95 is None


def test_error_rates_hold_under_a_look_after_every_run_with_the_simulators_spread():
    """The bench in small: the simulator's own paired differences, a look after every run of 2 pairs."""
    measured = simulated_pairs(120, seed=11)
    centre = sum(measured) / len(measured)
    null = [d - centre for d in measured]
    assert 6 < (sum(d * d for d in null) / (len(null) - 1)) ** 0.5 < 14, "the simulator's spread moved"
    none = run_canaries(null, 0.0, 2, max_pairs=100, canaries=400, seed=1)
    better = run_canaries(null, 5.0, 2, max_pairs=100, canaries=200, seed=2)
    worse = run_canaries(null, -5.0, 2, max_pairs=100, canaries=200, seed=3)
    assert none["adopted"] <= 0.05, none
    assert better["adopted"] >= 0.80, better
    assert worse["rolled_back"] >= 0.80 and worse["adopted_count"] == 0, worse
    # The same data looked at with a fixed-n interval after every run adopts far more often: the
    # sequential interval is what keeps the rate down.
    assert naive_adoption(null, 2, 100, 400, seed=1) > 2 * none["adopted"] + 0.03


def test_the_slack_message_says_what_changed_the_difference_its_interval_and_the_pairs_escaped():
    from lib.slack import canary_decision_message

    version = {"id": 7, "decision": "rolled_back", "change": 'Promoted "<!channel> say it expires today"',
               "diff": -4.25, "ci95": [-7.5, -1.0], "pairs": 42, "note": "rolled back by the canary after 42 pairs"}
    message = canary_decision_message({"message": "v7 rolled back: it did worse than v6, which stays active",
                                       "version": version, "parent": {"id": 6}}, "https://app.example", True)
    text = json.dumps(message)
    assert message["text"].startswith(":leftwards_arrow_with_hook: Closer v7 rolled back") and "(simulated LLM)" in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "*-4.2 points* (95% interval -7.5 to -1.0) over 42 paired battles" in text
    assert "https://app.example/admin/training-monitor" in text

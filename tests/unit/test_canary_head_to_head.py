"""Verdict mode on every score shape and sub-scores instead of the total, in small
(`python -m bench.canary_head_to_head` prints the full tables in docs/versions.md)."""
import itertools
import random
import statistics

from bench.canary import shape_streams, simulated_pairs
from bench.canary_head_to_head import (
    criterion_differences,
    effect_shifts,
    judged,
    replay_verdicts,
    subscore_first,
    subscores,
    total_of,
    verdict_first,
    verdict_shapes,
)
from lib import canary


def test_the_inlined_verdict_rule_decides_as_the_product_does():
    rng = random.Random(1)
    for lean in (-0.3, -0.1, 0.0, 0.1, 0.3) * 4:
        verdicts = [rng.choice((-1, 0, 1)) if rng.random() > abs(lean) else (1 if lean > 0 else -1)
                    for _ in range(1000)]
        for max_pairs in (100, 1000):
            assert replay_verdicts(verdicts, max_pairs) == \
                canary_outcome(verdict_first(iter(verdicts), max_pairs), max_pairs), (lean, max_pairs)


def canary_outcome(found, max_pairs):
    if found is not None and found[0] <= max_pairs:
        return (canary.ADOPTED if found[1] > 0 else canary.ROLLED_BACK), found[0]
    return canary.INCONCLUSIVE, max_pairs


def test_the_coin_cancels_the_judges_lean_but_a_skewed_mean_zero_difference_is_a_real_preference():
    shapes = shape_streams([0.0])
    rng = random.Random(2)
    symmetric = list(itertools.islice(judged(shapes["whole points 0-100"](rng, 0.0), rng), 20_000))
    assert abs(statistics.mean(symmetric)) < 0.02
    # +2.5 on 80% of pairs, −10 on 20%: the mean score is the same, yet the judge prefers the
    # candidate's call 4 times in 5, so verdict mode adopts it: its claim is about preference.
    skewed = list(itertools.islice(judged(shapes["skewed, mean 0"](rng, 0.0), rng), 20_000))
    assert 0.15 < statistics.mean(skewed) < 0.25


def test_verdict_mode_on_every_shape_in_small(capsys):
    measured = simulated_pairs(40, seed=3)
    centre = statistics.mean(measured)
    rows = {row["name"]: row for row in verdict_shapes([d - centre for d in measured], canaries=12, long=1, seed=3,
                                                       pair_cost=0.024, judge_cost=0.0025, sample_size=2000)}
    table = capsys.readouterr().out
    assert set(rows) == set(shape_streams([0.0])) and table.count("\n| ") == 1 + len(rows)
    assert rows["skewed, mean 0"]["mean 0.0"] > 0.1 and abs(rows["simulator"]["mean 0.0"]) < 0.1
    assert rows["60% exact ties"]["power"] >= 0.75 and rows["bimodal"]["median"] > rows["60% exact ties"]["median"]


def test_five_criteria_find_an_effect_on_one_of_them_sooner_and_an_even_one_later():
    shifts = {pattern: effect_shifts(pattern, 5.0, seed=4, pairs=2000) for pattern in ("all", "objection_handling")}
    rng = random.Random(4)
    sample = [total_of(next(criterion_differences(rng, shifts["objection_handling"]))) for _ in range(4000)]
    assert 4.3 < statistics.mean(sample) < 5.7 and shifts["objection_handling"][2] > 15
    pairs = {}
    for pattern, shift in shifts.items():
        found = [subscore_first(criterion_differences(rng, shift), 1000) for _ in range(30)]
        pairs[pattern] = {rule: statistics.median(f[rule][0] for f in found) for rule in ("total", "criteria")}
        assert all(f[rule][1] == 1 for f in found for rule in ("total", "criteria"))
    assert pairs["objection_handling"]["criteria"] < pairs["objection_handling"]["total"] / 1.5
    assert pairs["all"]["criteria"] > pairs["all"]["total"]


def test_the_sub_score_table_in_small(capsys):
    summary = subscores(canaries=8, seed=5, pair_cost=0.024, null_limit=100, sample_size=1000)
    assert set(summary) == {"total", "criteria"} and "five criteria" in capsys.readouterr().out

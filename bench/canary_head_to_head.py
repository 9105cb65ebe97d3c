"""Ways to decide sooner than on score differences, for `python -m bench.canary` (which prints all
three after its own tables) and on their own:

    python -m bench.canary_head_to_head                 # 2 and 3: 4–5 minutes on 2 busy cores
    python -m bench.canary_head_to_head --canaries 200  # the same, smaller: about a minute

1. The head-to-head verdict against the score difference: power, pairs to a decision and cost per
   decision (`lib.head_to_head`, through the simulator's LLM, and as the simulator's judge draws it
   for the bimodal row; `head_to_head_power`, run by bench.canary only).
2. Verdict mode on every shape of bench.canary, no effect and +5, with a judge that sees no more
   than the scores do (each pair's score difference, a lean to the call shown first, noise, ties),
   decided as the product decides (`verdict_shapes`).
3. Sub-scores instead of the total: the betting rule on the total against a rule on the five
   criteria with the level split five ways, effect spread evenly or on one criterion (`subscores`).
"""
from __future__ import annotations

import argparse
import itertools
import math
import multiprocessing
import random
import statistics
import time
from decimal import Decimal

from bench.canary import MAX_PAIRS, first_decisions, outcome, rates, shape_streams, simulated_pairs, tactic_with_effect
from lib import canary
from lib.battle import BattleSetup, BattleState, closer_system_prompt, fight
from lib.config import Settings
from lib.llm import LLM, CallContext
from lib.personas import CATALOG
from lib.simulator import SimulatedTransport


def wealth_first(stream, limit: int, bets, bound: float) -> tuple[int, int] | None:
    """The first look (after every pair) where `lib.canary`'s rule with these bets decides."""
    wealth = canary.Wealth(bets, bound)
    for _ in range(limit):
        wealth = wealth.add(next(stream))
        look = canary.decide_from_wealth(wealth, limit + 1)
        if look.decision != canary.PENDING:
            return look.pairs, 1 if look.decision == canary.ADOPTED else -1
    return None


def simulated_head_to_head(count: int, seed: int, tactics_b: tuple[str, ...] = ()) -> dict:
    """`count` pairs of simulated battles (closer B has `tactics_b`), each judged head to head
    through `lib.head_to_head.judge` and the simulator's LLM, the order a fair coin: the verdicts,
    the position bias, and the cost of a pair's two battles and of its head-to-head call."""
    from lib.head_to_head import judge, position_bias
    from lib.llm import Usage

    llm = LLM(SimulatedTransport(latency_scale=0), {})
    models = BattleSetup("gpt-4o", "gpt-4o-mini", "gpt-4o", 10, 300)
    base = Settings.from_env({}).closer_prompt_path.read_text()
    prompts = {"a": closer_system_prompt(base, []),
               "b": closer_system_prompt(base, [{"tactic_text": t} for t in tactics_b])}
    rng = random.Random(f"h2h-{seed}")
    verdicts, battles_cost, judge_cost = [], Decimal(0), Decimal(0)
    for index in range(count):
        persona = rng.choice(CATALOG)
        states = {}
        for side, prompt in prompts.items():
            states[side] = BattleState(f"h2h-{seed}-{index}-{side}", persona)
            fight(llm, CallContext.for_cap(Decimal(1000), time.monotonic() + 600), models, prompt, states[side])
            battles_cost += states[side].usage.cost
        candidate_first = rng.random() < 0.5
        shown = (states["b"], states["a"]) if candidate_first else (states["a"], states["b"])
        usage = Usage()
        verdicts.append(judge(llm, CallContext.for_cap(Decimal(1000), time.monotonic() + 600), models.referee,
                              states["b"].transcript, states["a"].transcript, candidate_first, usage,
                              seed="|".join(s.id for s in shown)))
        judge_cost += usage.cost
    return {"verdicts": verdicts, "bias": position_bias(verdicts), "pair_cost": float(battles_cost) / count,
            "judge_cost": float(judge_cost) / count}


def resampled_verdicts(null: list, better: list):
    """Verdicts drawn from the simulated pairs. With no effect the two versions are the same, so
    which one is called the candidate is arbitrary: a no-effect verdict is drawn with a random sign
    (the sample's own mean, +/- its Monte-Carlo error, is not a real effect)."""
    def stream(rng, effect):
        while True:
            if effect:
                yield float(rng.choice(better).verdict)
            else:
                yield float(rng.choice(null).verdict * rng.choice((-1, 1)))
    return stream


def modelled_head_to_head(rng, effect):
    """Head-to-head verdicts as the simulator's judge gives them (lib.simulator.head_to_head_answer),
    drawn directly: each call's quality is the effect plus the simulator's form, the judge adds its
    noise and leans towards the call shown first, the order a fair coin. The judge reads the calls,
    not the deal's outcome, so these are the verdicts on the bimodal row's pairs too."""
    from lib.simulator import CLICK_BONUS, CLICK_CHANCE, FORM_SPREAD, HEAD_TO_HEAD_SPREAD, POSITION_BIAS, TIE_MARGIN

    def form():
        return rng.gauss(0, FORM_SPREAD) + (CLICK_BONUS if rng.random() < CLICK_CHANCE else 0.0)
    while True:
        candidate, active = effect + form(), form()
        candidate_first = rng.random() < 0.5
        first, second = (candidate, active) if candidate_first else (active, candidate)
        gap = first - second + POSITION_BIAS + rng.gauss(0, HEAD_TO_HEAD_SPREAD)
        if abs(gap) < TIE_MARGIN:
            yield 0.0
        else:
            yield 1.0 if (gap > 0) == candidate_first else -1.0


def head_to_head_power(simulator: list[float], canaries: int, seed: int, spread_pairs: int) -> tuple[float, float]:
    """The head-to-head verdict against the score difference, by power and cost per decision; returns
    what a pair's two battles and its head-to-head call cost in the simulator's prices."""
    from lib.head_to_head import HEAD_TO_HEAD_BETS, HEAD_TO_HEAD_BOUND

    null = simulated_head_to_head(spread_pairs, seed)
    # Enough judged +5 pairs that their mean verdict is the judge's, not a sample's (300 gave +0.417
    # against about +0.38 on thousands), since the canaries below resample them.
    better = simulated_head_to_head(max(2000, spread_pairs), seed + 1, (tactic_with_effect(5.0),))
    pair_cost, judge_cost = null["pair_cost"], null["judge_cost"]
    print(f"\nhead to head through the simulator's LLM: {spread_pairs} no-effect pairs, mean verdict "
          f"{statistics.mean(v.verdict for v in null['verdicts']):+.3f}, the call shown first won "
          f"{null['bias']:.0%} of decisive verdicts; +5: mean verdict "
          f"{statistics.mean(v.verdict for v in better['verdicts']):+.3f}; a pair's two battles cost "
          f"${pair_cost:.4f}, its head-to-head call ${judge_cost:.4f}")
    print("\n| shape | decided on | no effect adopted / both (max 10,000) | +5 adopted ≤100 pairs | "
          "+5 pairs to decision | cost per decision |")
    print("|---|---|---:|---:|---:|---:|")
    streams = {"simulator": {
        "score difference": (shape_streams(simulator)["simulator"], canary.BETS, canary.BOUND, 0.0),
        "head to head, simulator's LLM": (resampled_verdicts(null["verdicts"], better["verdicts"]),
                                          HEAD_TO_HEAD_BETS, HEAD_TO_HEAD_BOUND, judge_cost)},
        "bimodal": {
        "score difference": (shape_streams(simulator)["bimodal"], canary.BETS, canary.BOUND, 0.0),
        "head to head (the simulator's judge)": (modelled_head_to_head, HEAD_TO_HEAD_BETS, HEAD_TO_HEAD_BOUND,
                                                 judge_cost)}}
    for shape, ways in streams.items():
        for label, (stream_of, bets, bound, extra) in ways.items():
            cells = {}
            for effect in (0.0, 5.0):
                rng = random.Random(f"{seed}-h2h-{shape}-{label}-{effect}")
                cells[effect] = [{1: wealth_first(stream_of(rng, effect), MAX_PAIRS[-1], bets, bound)}
                                 for _ in range(canaries)]
            null_rates = rates(cells[0.0], 1, MAX_PAIRS[-1])
            power = rates(cells[5.0], 1, 100)
            pairs = rates(cells[5.0], 1, MAX_PAIRS[-1])["pairs"]
            print(f"| {shape} | {label} | {null_rates['adopted']:.1%} / "
                  f"{null_rates['adopted'] + null_rates['rolled_back']:.1%} | {power['adopted']:.1%} | {pairs:.0f} | "
                  f"${pairs * (pair_cost + extra):.2f} |")
    return pair_cost, judge_cost


# ---- Verdict mode on every shape of the issue ----

VERDICT_CHECKS = 5  # canaries per shape and effect replayed through lib.canary as the product decides


def judged(differences, rng):
    """Verdicts from a judge that sees no more than the scores do: the pair's score difference d,
    the two calls shown in an order drawn by a fair coin, the judge leaning POSITION_BIAS points
    towards the call shown first, with noise HEAD_TO_HEAD_SPREAD, and a tie when the gap it sees
    is within TIE_MARGIN (lib.simulator's judge, reading d instead of the hidden qualities)."""
    from lib.simulator import HEAD_TO_HEAD_SPREAD, POSITION_BIAS, TIE_MARGIN

    gauss, coin = rng.gauss, rng.random
    for d in differences:
        candidate_first = coin() < 0.5
        gap = (d if candidate_first else -d) + POSITION_BIAS + gauss(0, HEAD_TO_HEAD_SPREAD)
        yield 0 if abs(gap) < TIE_MARGIN else 1 if (gap > 0) == candidate_first else -1


def verdict_first(verdicts, limit: int) -> tuple[int, int] | None:
    """The first look (after every pair) where lib.canary's rule with HEAD_TO_HEAD_BETS decides on
    these verdicts, as (n, +1 adopt / −1 roll back), or None by `limit`. Inlined for speed: with
    verdicts in {−1, 0, 1} the wealth depends only on the wins and losses so far, and a tie
    changes nothing (checked decision for decision by `replay_verdicts`)."""
    from lib.head_to_head import HEAD_TO_HEAD_BETS, HEAD_TO_HEAD_BOUND

    bets = [(math.log1p(c / HEAD_TO_HEAD_BOUND), math.log1p(-c / HEAD_TO_HEAD_BOUND), math.log(w))
            for c, w in HEAD_TO_HEAD_BETS]
    threshold, cheap = canary.THRESHOLD, canary.THRESHOLD - math.log(len(bets))
    wins = losses = 0
    for n, verdict in enumerate(verdicts, 1):
        if n > limit:
            return None
        if verdict > 0:
            wins += 1
        elif verdict < 0:
            losses += 1
        elif n > canary.MIN_PAIRS:
            continue
        if n < canary.MIN_PAIRS:
            continue
        up = [wins * gain + losses * loss for gain, loss, _ in bets]
        down = [wins * loss + losses * gain for gain, loss, _ in bets]
        if max(max(u, v) + log_w for u, v, (_, _, log_w) in zip(up, down, bets)) < cheap:
            continue
        up_mixed, down_mixed = canary.mixed(up, HEAD_TO_HEAD_BETS), canary.mixed(down, HEAD_TO_HEAD_BETS)
        if up_mixed >= threshold and up_mixed >= down_mixed:
            return n, 1
        if down_mixed >= threshold:
            return n, -1
    return None


def replay_verdicts(verdicts: list[int], max_pairs: int) -> tuple[str, int]:
    """The same canary as the product decides it (lib.followups): each verdict read as ±100 (0 a
    tie), `lib.canary` with bound 100 and HEAD_TO_HEAD_BETS, a look after every pair."""
    from lib.head_to_head import HEAD_TO_HEAD_BETS

    wealth = canary.Wealth(HEAD_TO_HEAD_BETS, canary.BOUND)
    for verdict in verdicts[:max_pairs]:
        wealth = wealth.add(100.0 * verdict)
        look = canary.decide_from_wealth(wealth, max_pairs)
        if look.decision != canary.PENDING:
            return look.decision, look.pairs
    return canary.PENDING, wealth.n


def verdict_shape_row(job: tuple) -> dict:
    """One shape's verdict canaries (a worker's job): no effect, each followed to 1,000 pairs and the
    first `long` of them to 10,000; +5, each to 10,000; and the score rule's +5 canaries on the same
    shape for comparison."""
    name, simulator, canaries, long, seed, sample_size = job
    stream_of = shape_streams(simulator)[name]
    out: dict = {"name": name}
    for effect in (0.0, 5.0):
        rng = random.Random(f"{seed}-verdicts-{name}-{effect}")
        results = []
        for index in range(canaries):
            limit = MAX_PAIRS[-1] if effect or index < long else MAX_PAIRS[1]
            verdicts = judged(stream_of(rng, effect), rng)
            if index < VERDICT_CHECKS:  # kept, then replayed through lib.canary
                kept = [next(verdicts) for _ in range(MAX_PAIRS[1])]
                found = verdict_first(itertools.chain(kept, verdicts), limit)
                for max_pairs in MAX_PAIRS[:2]:
                    assert replay_verdicts(kept, max_pairs) == outcome(found, max_pairs), (name, effect, max_pairs)
            else:
                found = verdict_first(verdicts, limit)
            results.append({1: found})
        out[effect] = results
        sample_rng = random.Random(f"{seed}-verdict-mean-{name}-{effect}")
        sample = list(itertools.islice(judged(stream_of(sample_rng, effect), sample_rng), sample_size))
        out[f"mean {effect}"] = statistics.mean(sample)
    spread_rng = random.Random(f"{seed}-{name}-spread")  # bench.canary's: the same spread as its table
    out["spread"] = statistics.stdev(itertools.islice(stream_of(spread_rng, 0.0), sample_size))
    score_rng = random.Random(f"{seed}-verdicts-{name}-scores")
    out["scores"] = [first_decisions(stream_of(score_rng, 5.0), MAX_PAIRS[-1]) for _ in range(canaries)]
    return out


def verdict_shapes(simulator: list[float], canaries: int, long: int, seed: int, pair_cost: float,
                   judge_cost: float, sample_size: int = 20_000) -> list[dict]:
    """Verdict mode on every shape of bench.canary, against the score rule on the same shape
    (`sample_size` pairs per shape measure the spread and the mean verdicts)."""
    margin, long_margin = (2 * math.sqrt(0.025 * 0.975 / count) for count in (canaries, long))
    followed = ("each followed to 10,000 pairs" if long >= canaries else
                f"no effect: each followed to 1,000 pairs, {long} of them to 10,000 (±{long_margin:.1%} there)")
    print(f"\nverdict mode on every shape: a judge that sees each pair's score difference d (and nothing more), "
          f"the order a fair coin; {canaries} canaries per shape and effect, a look after every pair, {followed}; "
          f"Monte-Carlo margin (2 s.e.) at 2.5%: ±{margin:.1%}; {min(VERDICT_CHECKS, canaries)} canaries per row "
          f"replayed through lib.canary as the product decides: identical decisions. Cost per decision = mean "
          f"pairs × (${pair_cost:.4f} a pair + ${judge_cost:.4f} its verdict; on scores the pair alone)")
    print("\n| shape | spread | mean verdict: no effect / +5 | no effect adopted / both, max 100 | max 1,000 | "
          "max 10,000 | +5 adopted ≤100 pairs | +5 pairs to decision: median (mean) | cost per decision | "
          "on scores: +5 ≤100 pairs, cost per decision |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    jobs = [(name, simulator, canaries, long, seed, sample_size) for name in shape_streams(simulator)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:  # no fork of a threaded process
        rows = pool.map(verdict_shape_row, jobs)
    for row in rows:
        cells = []
        for max_pairs in MAX_PAIRS:
            null = rates(row[0.0] if max_pairs <= MAX_PAIRS[1] else row[0.0][:long], 1, max_pairs)
            cells.append(f"{null['adopted']:.1%} / {null['adopted'] + null['rolled_back']:.1%}")
        power = rates(row[5.0], 1, 100)
        pairs = [outcome(found[1], MAX_PAIRS[-1])[1] for found in row[5.0]]
        scores_power = rates(row["scores"], 1, 100)
        scores_pairs = rates(row["scores"], 1, MAX_PAIRS[-1])["pairs"]
        row["power"], row["median"], row["mean"] = power["adopted"], statistics.median(pairs), statistics.mean(pairs)
        print(f"| {row['name']} | {row['spread']:.1f} | {row['mean 0.0']:+.2f} / {row['mean 5.0']:+.2f} | "
              f"{' | '.join(cells)} | {power['adopted']:.1%} | {row['median']:.0f} ({row['mean']:.0f}) | "
              f"${row['mean'] * (pair_cost + judge_cost):.2f} | {scores_power['adopted']:.1%}, "
              f"${scores_pairs * pair_cost:.2f} |")
    return rows


# ---- Sub-scores instead of the total ----

CRITERIA_SPLIT = 5  # the criteria rule splits the level five ways: each bet at ln(2·5/alpha)
# Which criteria a +5 total moves, as a share of the shift: spread evenly (as the simulator does:
# a tactic moves the call's quality, every criterion with it), or on objection_handling alone.
EFFECT_PATTERNS = {"spread evenly": "all", "on objection_handling": "objection_handling"}
# The calls' level, below the simulator's (a mean call near 84): there a criterion can rise only
# about 16 points before 100, so a +5 total on objection_handling alone (weight 0.30) cannot happen.
LEVEL_DROP = 25.0


def criterion_differences(rng, shifts: tuple[float, ...]):
    """Endless paired sub-score differences (candidate − active, one per criterion, in CRITERIA's
    order) as the simulator's referee draws them, LEVEL_DROP points lower: a catalog persona, each
    call's quality 98 − 4·difficulty − LEVEL_DROP + form (FORM_SPREAD, CLICK_BONUS on
    CLICK_CHANCE), each criterion that quality plus CRITERION_SPREAD noise, rounded and clipped to
    0–100; the candidate's criteria + `shifts`."""
    from lib.referee import CRITERIA
    from lib.simulator import CLICK_BONUS, CLICK_CHANCE, CRITERION_SPREAD, FORM_SPREAD

    levels = [98 - 4 * persona["characteristics"]["difficulty"] - LEVEL_DROP for persona in CATALOG]
    gauss, uniform, count = rng.gauss, rng.random, len(CRITERIA)

    def call(level, offsets):
        quality = level + gauss(0, FORM_SPREAD) + (CLICK_BONUS if uniform() < CLICK_CHANCE else 0.0)
        return [max(0, min(100, round(quality + offset + gauss(0, CRITERION_SPREAD)))) for offset in offsets]
    while True:
        level = rng.choice(levels)
        active = call(level, (0.0,) * count)
        yield tuple(c - a for c, a in zip(call(level, shifts), active))


def total_of(differences: tuple[int, ...]) -> float:
    """The total's difference: CRITERIA's weights times the criteria's (lib.referee.total_score)."""
    from lib.referee import CRITERIA

    return round(sum(float(w) * d for w, d in zip(CRITERIA.values(), differences)), 2)


def effect_shifts(pattern: str, total: float, seed: int, pairs: int = 10_000) -> tuple[float, ...]:
    """Per-criterion shifts whose mean total difference is `total` points after the 0–100 clip
    (which takes a little of a large shift): bisection on common draws."""
    from lib.referee import CRITERIA

    weights = [float(w) for w in CRITERIA.values()]
    unit = tuple(1.0 if pattern in ("all", name) else 0.0 for name in CRITERIA)
    unit = tuple(u / sum(w * x for w, x in zip(weights, unit)) for u in unit)  # a shift of 1 on the total

    def mean_total(scale):
        stream = criterion_differences(random.Random(f"{seed}-calibrate"), tuple(scale * u for u in unit))
        return statistics.mean(total_of(next(stream)) for _ in range(pairs))
    low, high = total, 2 * total
    if mean_total(high) < total:
        raise ValueError(f"a {total:+g} total on {pattern} is out of reach at these levels")
    for _ in range(12):
        low, high = ((low + high) / 2, high) if mean_total((low + high) / 2) < total else (low, (low + high) / 2)
    return tuple((low + high) / 2 * u for u in unit)


def _log_terms(bets, d: float, bound: float = canary.BOUND) -> tuple[float, ...]:
    return (*(math.log1p(c * d / bound) for c, _ in bets), *(math.log1p(-c * d / bound) for c, _ in bets))


def subscore_first(stream, limit: int) -> dict[str, tuple[int, int] | None]:
    """Along one canary's pairs of sub-score differences, a look after every pair from MIN_PAIRS:
    the first decision of `lib.canary`'s rule on the total ("total": its bets, threshold ln 40), and
    of the rule on the five criteria ("criteria": each criterion's bets at ln(2·5/alpha); adopt when
    some criterion's adopting bet reaches it and no criterion's rolling-back bet has, roll back
    likewise), as (n, ±1) or None by `limit`."""
    bets, size = canary.BETS, len(canary.BETS)
    thresholds = {"total": canary.THRESHOLD, "criteria": math.log(2 * CRITERIA_SPLIT / canary.ALPHA)}
    integer_terms = {d: _log_terms(bets, float(d)) for d in range(-100, 101)}
    total_terms: dict[float, tuple[float, ...]] = {}
    found: dict[str, tuple[int, int] | None] = {"total": None, "criteria": None}
    total_sums = [0.0] * 2 * size
    criteria_sums = [[0.0] * 2 * size for _ in range(CRITERIA_SPLIT)]
    for n in range(1, limit + 1):
        differences = next(stream)
        total = total_of(differences)
        if total not in total_terms:
            total_terms[total] = _log_terms(bets, total)
        total_sums = [s + t for s, t in zip(total_sums, total_terms[total])]
        criteria_sums = [[s + t for s, t in zip(sums, integer_terms[d])]
                         for sums, d in zip(criteria_sums, differences)]
        if n < canary.MIN_PAIRS:
            continue
        if found["total"] is None:
            up, down = canary.mixed(total_sums[:size]), canary.mixed(total_sums[size:])
            if up >= thresholds["total"] and up >= down:
                found["total"] = (n, 1)
            elif down >= thresholds["total"]:
                found["total"] = (n, -1)
        if found["criteria"] is None:
            ups = any(canary.mixed(sums[:size]) >= thresholds["criteria"] for sums in criteria_sums)
            downs = any(canary.mixed(sums[size:]) >= thresholds["criteria"] for sums in criteria_sums)
            if ups != downs:
                found["criteria"] = (n, 1 if ups else -1)
        if None not in found.values():
            break
    return found


def subscore_job(job: tuple) -> list[dict]:
    """One effect's canaries (a worker's job): each followed to `limit` pairs."""
    label, shifts, canaries, limit, seed = job
    rng = random.Random(f"{seed}-subscores-{label}")
    return [subscore_first(criterion_differences(rng, shifts), limit) for _ in range(canaries)]


def subscores(canaries: int, seed: int, pair_cost: float, null_limit: int = MAX_PAIRS[1],
              sample_size: int = 10_000) -> dict:
    """The betting rule on the total against the rule on the five criteria, on the same canaries
    (`sample_size` pairs calibrate each effect and measure the spreads)."""
    from lib.referee import CRITERIA

    shifts = {label: effect_shifts(pattern, 5.0, seed, sample_size) for label, pattern in EFFECT_PATTERNS.items()}
    check = criterion_differences(random.Random(f"{seed}-subscores-spread"), (0.0,) * len(CRITERIA))
    sample = [next(check) for _ in range(sample_size)]
    columns = list(zip(*sample))
    print(f"\nsub-scores instead of the total: {canaries} canaries per effect, a look after every pair, the "
          f"simulator's referee (criteria {', '.join(CRITERIA)}; weights {', '.join(str(w) for w in CRITERIA.values())}). "
          f"No effect: the total's difference spreads {statistics.stdev(total_of(d) for d in sample):.1f} points, "
          f"each criterion's {min(statistics.stdev(c) for c in columns):.1f}–{max(statistics.stdev(c) for c in columns):.1f}, "
          f"correlated {statistics.correlation(columns[0], columns[2]):.2f} (rapport with objection_handling: the "
          f"call's form moves them all). +5 on the total after the 0–100 clip: "
          + "; ".join(f"{label} {', '.join(f'{s:+.1f}' for s in shift)}" for label, shift in shifts.items()))
    jobs = [("no effect", (0.0,) * len(CRITERIA), canaries, null_limit, seed)]
    jobs += [(label, shift, canaries, MAX_PAIRS[-1], seed) for label, shift in shifts.items()]
    with multiprocessing.get_context("spawn").Pool(2) as pool:  # no fork of a threaded process
        results = dict(zip([job[0] for job in jobs], pool.map(subscore_job, jobs)))
    print(f"\n| rule (valid for) | no effect adopted / both, max {null_limit:,} | "
          + " | ".join(f"+5 {label}: adopted ≤100 pairs | pairs to decision: median (mean) | cost per decision"
                       for label in shifts) + " |")
    print("|---|---:|" + "---:|---:|---:|" * len(shifts))
    summary: dict = {}
    for rule, claim in (("total", "the total, lib.canary (the mean total is higher)"),
                        ("criteria", "five criteria at ln(2·5/alpha) each (some criterion's mean is higher)")):
        null = rates([{1: found[rule]} for found in results["no effect"]], 1, null_limit)
        cells = [f"{null['adopted']:.1%} / {null['adopted'] + null['rolled_back']:.1%}"]
        summary[rule] = {"null": null}
        for label in shifts:
            found = [{1: f[rule]} for f in results[label]]
            power = rates(found, 1, 100)["adopted"]
            pairs = [outcome(f[1], MAX_PAIRS[-1])[1] for f in found]
            summary[rule][label] = {"power": power, "median": statistics.median(pairs), "mean": statistics.mean(pairs)}
            cells += [f"{power:.1%}", f"{statistics.median(pairs):.0f} ({statistics.mean(pairs):.0f})",
                      f"${statistics.mean(pairs) * pair_cost:.2f}"]
        print(f"| {claim} | {' | '.join(cells)} |")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.canary_head_to_head",
                                     description="Verdict mode on every score shape, and sub-scores instead of the total "
                                                 "(python -m bench.canary prints these too, after its own tables).")
    parser.add_argument("--canaries", type=int, default=1000, help="canaries per shape and effect (default 1000)")
    parser.add_argument("--long", type=int, help="of them, no-effect canaries followed to 10,000 pairs (default all)")
    parser.add_argument("--spread-pairs", type=int, default=600, help="simulated pairs: the simulator's shape, prices")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.monotonic()
    measured = simulated_pairs(args.spread_pairs, seed=args.seed)
    centre = statistics.mean(measured)
    priced = simulated_head_to_head(args.spread_pairs, args.seed)
    verdict_shapes([d - centre for d in measured], args.canaries, min(args.long or args.canaries, args.canaries), args.seed,
                   priced["pair_cost"], priced["judge_cost"])
    subscores(args.canaries, args.seed, priced["pair_cost"])
    print(f"\n({time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()

"""The canary's error rates and power under the looks the system really takes, by simulation.

    python -m bench.canary              # about 15 minutes on 2 busy cores
    python -m bench.canary --quick      # fewer canaries, well under a minute

1. **Score shapes.** Paired differences d = candidate − active with no effect, nine ways: the
   simulator's own (pairs of simulated battles through `lib.battle.fight`, centred), whole points
   clipped to 0–100, steps of 5, t with 3 df, a spread that varies by persona, 60% exact ties, the
   first 10 pairs identical (both battles score the same, then the simulator's), mean zero but
   skewed (+2.5 on 80%, −10 on 20%), and bimodal (a deal closed ≈ 85, not ≈ 35). The +5 rows add 5 points to the candidate (its score, where the shape
   has scores, clipped to 0–100).
2. **The canaries.** For each shape, canaries add pairs one at a time; `lib.canary`'s rule is
   applied at every look (after each run of 1, 2 or 5 pairs) until a decision or
   CANARY_MAX_PAIRS (100, 1,000, 10,000: one path serves every limit). A sample of canaries is
   replayed through `lib.canary.decide_from_wealth` itself and must decide identically.
3. **Pairing through the real SQL.** An embedded PostgreSQL with 12, 14 or 15 active personas and a
   candidate: batches of 3 and 5 started by `training_start_run` (which personas are paired, and
   each pair's order, are the database's) and their battles by `training_start_battle`. Printed:
   how even the pair counts stay, and canaries on those plans where a deadline cuts the late
   starter's weaker calls (10% and 30% of them): with the recorded fair-coin order against the
   old fixed order (candidate second). And real runs (`lib.runner.run_batch`, simulated LLM) cut
   by a 1-second deadline: which side of the half-done pairs finished.
4. **Power.** Pairs to a decision, the first pass's self-normalised rule (valid only for
   symmetric differences) for comparison, and the head-to-head verdict (`lib.head_to_head`, through
   the simulator's LLM and as the simulator's judge draws it) against the score difference: power,
   pairs and cost per decision; then verdict mode on every shape above (a judge that sees each
   pair's score difference) and sub-scores instead of the total (`bench.canary_head_to_head`, also
   runnable on its own: `python -m bench.canary_head_to_head`).

Goals (issue 19): no-effect adoption ≤ 2.5% and both-sided error ≤ 5% in every row at every max
pairs; +5 adopted ≥ 90% within 100 pairs at spreads ≤ 12; the bimodal row's pairs to decision.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import statistics
import time
from decimal import Decimal

from lib import canary
from lib.battle import BattleSetup, BattleState, closer_system_prompt, fight
from lib.config import Settings
from lib.llm import LLM, CallContext
from lib.personas import CATALOG
from lib.simulator import SimulatedTransport, tactic_effect

PAIRS_PER_RUN = (1, 2, 5)
MAX_PAIRS = (100, 1_000, 10_000)
PERSONA_SPREADS = (4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 20.0)


def simulated_pairs(count: int, seed: int = 1, tactics_b: tuple[str, ...] = ()) -> list[float]:
    """`count` paired differences from the simulator: score(closer B) − score(closer A), same
    persona, different battles. B has `tactics_b` added (none: a null pair)."""
    llm = LLM(SimulatedTransport(latency_scale=0), {})
    models = BattleSetup("gpt-4o", "gpt-4o-mini", "gpt-4o", 10, 300)
    base = Settings.from_env({}).closer_prompt_path.read_text()
    prompt_a = closer_system_prompt(base, [])
    prompt_b = closer_system_prompt(base, [{"tactic_text": t} for t in tactics_b])
    rng = random.Random(seed)
    diffs = []
    for index in range(count):
        persona = rng.choice(CATALOG)
        scores = []
        for side, prompt in (("a", prompt_a), ("b", prompt_b)):
            state = BattleState(f"bench-{seed}-{index}-{side}", persona)
            fight(llm, CallContext.for_cap(Decimal(1000), time.monotonic() + 600), models, prompt, state)
            scores.append(float(state.verdict.total))
        diffs.append(scores[1] - scores[0])
    return diffs


def run_canaries(null_diffs: list[float], effect: float, pairs_per_run: int, max_pairs: int, canaries: int,
                 seed: int) -> dict:
    """Sequential canaries as the system runs them; rates of each decision and the pairs used."""
    rng = random.Random(seed)
    counts = {canary.ADOPTED: 0, canary.ROLLED_BACK: 0, canary.INCONCLUSIVE: 0}
    used = []
    for _ in range(canaries):
        wealth = canary.Wealth()
        while True:
            for _ in range(pairs_per_run):
                wealth = wealth.add(max(-canary.BOUND, min(canary.BOUND, rng.choice(null_diffs) + effect)))
            look = canary.decide_from_wealth(wealth, max_pairs)
            if look.decision != canary.PENDING:
                break
        counts[look.decision] += 1
        used.append(wealth.n)
    return {"adopted": counts[canary.ADOPTED] / canaries, "rolled_back": counts[canary.ROLLED_BACK] / canaries,
            "inconclusive": counts[canary.INCONCLUSIVE] / canaries, "adopted_count": counts[canary.ADOPTED],
            "mean_pairs": statistics.mean(used)}


def naive_adoption(null_diffs: list[float], pairs_per_run: int, max_pairs: int, canaries: int, seed: int) -> float:
    """For comparison: a fixed-n 95% interval (mean ± 1.96 s/√n) looked at after every run."""
    rng = random.Random(seed)
    adopted = 0
    for _ in range(canaries):
        n, total, squares = 0, 0.0, 0.0
        while n < max_pairs:
            for _ in range(pairs_per_run):
                d = rng.choice(null_diffs)
                n, total, squares = n + 1, total + d, squares + d * d
            if n < canary.MIN_PAIRS:
                continue
            mean = total / n
            sd = max((squares - n * mean * mean) / (n - 1), 1.0) ** 0.5
            if abs(mean) > 1.96 * sd / n ** 0.5:
                adopted += mean > 0
                break
    return adopted / canaries


def tactic_with_effect(target: float) -> str:
    """A tactic text whose hidden effect is within 0.05 points of `target`."""
    index = 0
    while True:
        text = f"Bench tactic number {index}: mirror the seller's words."
        if abs(tactic_effect(text) - target) < 0.05:
            return text
        index += 1


def clip(score: float) -> float:
    return min(100.0, max(0.0, score))


def shape_streams(simulator: list[float]) -> dict:
    """Each shape: a function (rng, effect) → an endless iterator of paired differences."""

    def resampled(rng, effect):
        while True:
            yield rng.choice(simulator) + effect

    def scored(step):
        def stream(rng, effect):
            while True:
                level = rng.uniform(40, 90)  # the persona's difficulty: cancels out of d
                active = clip(step * round((level + rng.gauss(0, 7)) / step))
                candidate = clip(step * round((level + effect + rng.gauss(0, 7)) / step))
                yield candidate - active
        return stream

    def t3(rng, effect):
        while True:
            t = rng.gauss(0, 1) / math.sqrt(sum(rng.gauss(0, 1) ** 2 for _ in range(3)) / 3)
            yield max(-100.0, min(100.0, 9.5 / math.sqrt(3) * t + effect))

    def by_persona(rng, effect):
        while True:
            yield max(-100.0, min(100.0, rng.gauss(effect, rng.choice(PERSONA_SPREADS))))

    def ties(rng, effect):
        while True:
            yield effect + (0.0 if rng.random() < 0.6 else float(round(rng.gauss(0, 15))))

    def first_ten_identical(rng, effect):
        for _ in range(10):  # both battles of each pair score the same (a stuck referee)
            yield 0.0
        while True:
            yield rng.choice(simulator) + effect

    def skewed(rng, effect):
        while True:
            yield (2.5 if rng.random() < 0.8 else -10.0) + effect

    def bimodal(rng, effect):
        def score(shift):
            return clip((85.0 if rng.random() < 0.45 else 35.0) + rng.gauss(0, 4) + shift)
        while True:
            active = score(0.0)
            yield score(effect) - active

    return {"simulator": resampled, "whole points 0-100": scored(1), "steps of 5": scored(5), "t, 3 df": t3,
            "spread by persona": by_persona, "60% exact ties": ties, "first 10 identical": first_ten_identical,
            "skewed, mean 0": skewed, "bimodal": bimodal}


def first_decisions(stream, limit: int) -> dict[int, tuple[int, int] | None]:
    """Along one canary's pairs: for each run size k, the first look (n a multiple of k, from
    MIN_PAIRS) where the rule decides, as (n, +1 adopt / −1 roll back), or None by `limit`. Does
    exactly what `canary.Wealth` and `canary.decide_from_wealth` do, inlined for speed (checked by
    `replay`)."""
    (c0, w0), (c1, w1), (c2, w2) = canary.BETS
    bound, threshold = canary.BOUND, canary.THRESHOLD
    # mixed() ≤ the largest ln w_j + L_j plus ln 3: a cheap test before the exact one
    cheap = threshold - math.log(3)
    l0, l1, l2 = math.log(w0), math.log(w1), math.log(w2)
    log1p = math.log1p
    found: dict[int, tuple[int, int] | None] = {k: None for k in PAIRS_PER_RUN}
    open_ = set(PAIRS_PER_RUN)
    cache: dict[float, tuple[float, ...]] = {}
    u0 = u1 = u2 = v0 = v1 = v2 = 0.0
    for n in range(1, limit + 1):
        d = next(stream)
        terms = cache.get(d)
        if terms is None:
            terms = (log1p(c0 * d / bound), log1p(c1 * d / bound), log1p(c2 * d / bound),
                     log1p(-c0 * d / bound), log1p(-c1 * d / bound), log1p(-c2 * d / bound))
            if len(cache) < 4096:
                cache[d] = terms
        u0 += terms[0]
        u1 += terms[1]
        u2 += terms[2]
        v0 += terms[3]
        v1 += terms[4]
        v2 += terms[5]
        if n < canary.MIN_PAIRS or max(u0 + l0, u1 + l1, u2 + l2, v0 + l0, v1 + l1, v2 + l2) < cheap:
            continue
        up, down = canary.mixed((u0, u1, u2)), canary.mixed((v0, v1, v2))
        side = 1 if up >= threshold and up >= down else -1 if down >= threshold else 0
        if side:
            for k in list(open_):
                if n % k == 0:
                    found[k] = (n, side)
                    open_.discard(k)
            if not open_:
                break
    return found


def replay(diffs: list[float], k: int, max_pairs: int) -> tuple[str, int]:
    """The same canary through lib.canary itself: its decision and pairs."""
    wealth = canary.Wealth()
    for i in range(0, len(diffs), k):
        for d in diffs[i:i + k]:
            wealth = wealth.add(d)
        look = canary.decide_from_wealth(wealth, max_pairs)
        if look.decision != canary.PENDING:
            return look.decision, look.pairs
    return canary.PENDING, wealth.n


def shape_rows(job: tuple) -> dict:
    """One shape's canaries, no effect and +5 (a worker process's job)."""
    name, simulator, canaries, checks, seed = job
    stream_of = shape_streams(simulator)[name]
    out = {"name": name}
    for effect in (0.0, 5.0):
        rng = random.Random(f"{seed}-{name}-{effect}")
        results, sample = [], []
        for index in range(canaries):
            if index < checks:  # kept, then replayed through lib.canary
                source = stream_of(rng, effect)
                diffs = [next(source) for _ in range(MAX_PAIRS[-1])]
                sample.append(diffs)
                results.append(first_decisions(iter(diffs), MAX_PAIRS[-1]))
            else:
                results.append(first_decisions(stream_of(rng, effect), MAX_PAIRS[-1]))
        out[effect] = results
        for diffs, found in zip(sample, results):
            for k in PAIRS_PER_RUN:
                for max_pairs in MAX_PAIRS[:2]:
                    expected = outcome(found[k], max_pairs)
                    assert replay(diffs, k, max_pairs) == expected, (name, effect, k, max_pairs)
        spread_rng = random.Random(f"{seed}-{name}-spread")
        spread_stream = stream_of(spread_rng, 0.0)
        out.setdefault("spread", statistics.stdev(next(spread_stream) for _ in range(20_000)))
    return out


def outcome(found: tuple[int, int] | None, max_pairs: int) -> tuple[str, int]:
    if found is not None and found[0] <= max_pairs:
        return (canary.ADOPTED if found[1] > 0 else canary.ROLLED_BACK), found[0]
    return canary.INCONCLUSIVE, max_pairs


def rates(results: list, k: int, max_pairs: int) -> dict:
    decided = [outcome(found[k], max_pairs) for found in results]
    count = len(decided)
    return {"adopted": sum(d == canary.ADOPTED for d, _ in decided) / count,
            "rolled_back": sum(d == canary.ROLLED_BACK for d, _ in decided) / count,
            "pairs": statistics.mean(n for _, n in decided)}


def self_normalised_first(stream, limit: int) -> tuple[int, int] | None:
    """The first pass's rule, for comparison: |Σd| ≥ sqrt((Σd² + 1500)·ln((Σd² + 1500)/(1500·0.05²))),
    valid only when no-effect differences are symmetric; a look after every pair from MIN_PAIRS."""
    rho, total, squares = 1500.0, 0.0, 0.0
    for n in range(1, limit + 1):
        d = next(stream)
        total, squares = total + d, squares + d * d
        if n >= canary.MIN_PAIRS and total * total >= (squares + rho) * math.log((squares + rho) / (rho * 0.0025)):
            return n, 1 if total > 0 else -1
    return None


def compare_first_pass(simulator: list[float], canaries: int, seed: int) -> None:
    """Both rules on the same shapes: what validity for every bounded difference costs and gains."""
    print("\n| rule | simulator +5 adopted ≤100 pairs | spread by persona +5 ≤100 | skewed mean 0: adopted / both by "
          "10,000 | bimodal +5: pairs to decision |")
    print("|---|---:|---:|---:|---:|")
    shapes = shape_streams(simulator)
    first_pass = lambda stream, limit: {1: self_normalised_first(stream, limit)}  # noqa: E731
    ours = lambda stream, limit: {1: first_decisions(stream, limit)[1]}  # noqa: E731
    for label, rule in (("self-normalised (first pass; symmetric differences only)", first_pass),
                        ("betting (lib.canary; any bounded differences)", ours)):
        cells = []
        for name, effect, limit in (("simulator", 5.0, 100), ("spread by persona", 5.0, 100),
                                    ("skewed, mean 0", 0.0, MAX_PAIRS[-1]), ("bimodal", 5.0, MAX_PAIRS[-1])):
            rng = random.Random(f"{seed}-compare-{name}")
            found = [rule(shapes[name](rng, effect), limit) for _ in range(canaries)]
            got = rates(found, 1, limit)
            if name == "skewed, mean 0":
                cells.append(f"{got['adopted']:.1%} / {got['adopted'] + got['rolled_back']:.1%}")
            elif name == "bimodal":
                cells.append(f"{got['pairs']:.0f}")
            else:
                cells.append(f"{got['adopted']:.1%}")
        print(f"| {label} | {' | '.join(cells)} |")


def largest_bet_alone(canaries: int, seed: int) -> dict[float, float]:
    """How often +5 (normal differences) is adopted within 100 pairs by the largest constant bet a
    difference bounded in [−100, 100] allows, alone: what the docs cite as the price of validity."""
    alone = ((0.99, 1.0),)
    adopted = {}
    for spread in (9.5, 12.0):
        rng = random.Random(f"{seed}-largest-bet-{spread}")
        hits = 0
        for _ in range(canaries):
            wealth = canary.Wealth(alone)
            for _ in range(100):
                wealth = wealth.add(max(-canary.BOUND, min(canary.BOUND, rng.gauss(5.0, spread))))
                look = canary.decide_from_wealth(wealth, 101)
                if look.decision != canary.PENDING:
                    hits += look.decision == canary.ADOPTED
                    break
        adopted[spread] = hits / canaries
    print(f"\nthe largest bet alone (c = 0.99), +5 adopted within 100 pairs, {canaries} canaries: "
          + ", ".join(f"{share:.1%} at spread {spread:g}" for spread, share in adopted.items()))
    return adopted


def outlook_check(canaries: int, seed: int) -> None:
    """`lib.canary.pairs_for_effect` (the outlook shown in `versions`) against the simulated 90th
    percentile of pairs to a decision, +5 with normal differences, a look after every pair."""
    print("\n| spread | outlook: pairs for +5 | simulated: median | 90th percentile |")
    print("|---:|---:|---:|---:|")
    for spread in (5.0, 9.5, 12.0, 20.0, 33.0):
        rng = random.Random(f"{seed}-outlook-{spread}")

        def normal(rng=rng, spread=spread):
            while True:
                yield max(-canary.BOUND, min(canary.BOUND, rng.gauss(5.0, spread)))
        pairs = sorted((first_decisions(normal(), 20_000)[1] or (20_001, 0))[0] for _ in range(canaries))
        print(f"| {spread:g} | {canary.pairs_for_effect(spread)} | {pairs[len(pairs) // 2]} | "
              f"{pairs[int(len(pairs) * 0.9)]} |")


def pairing_plans(configs: list[tuple[int, int]], runs: int) -> dict:
    """Runs started by the real SQL for each (batch, personas): per run, the paired personas and
    whether the candidate started first; and the pair counts' spread along the way."""
    import psycopg

    from bench.common import bench_database
    from lib.store.queries import Queries, Trigger

    plans = {}
    with bench_database(personas=max(p for _, p in configs)) as (url, store):
        queries = Queries(store)
        with psycopg.connect(url, autocommit=True) as db:
            for batch, personas in configs:
                db.execute("delete from sandbox_battles; delete from training_runs; delete from training_versions")
                db.execute("update sandbox_personas set is_active = (name like 'Bench persona %%' and name < %s), "
                           "lease_run_id = null, "
                           "last_battled_at = null", (f"Bench persona {personas:03d}",))
                active = db.execute("select (training_ensure_active_version()).id").fetchone()[0]
                candidate = db.execute("insert into training_versions (parent_id, status, change, decision) values "
                                       "(%s, 'candidate', 'bench', 'pending') returning id", (active,)).fetchone()[0]
                names = [n for (n,) in db.execute("select name from sandbox_personas where is_active order by name")]
                pairs, worst, never_at_100 = [], 0, None
                for _ in range(runs):
                    started = queries.start_run(
                        trigger=Trigger.CLI, requested_batch_size=None, batch_size=batch, cost_cap=Decimal(5),
                        max_concurrent_runs=1, deadline_ms=60_000, simulated=True, default_battle_ms=1000,
                        canary_share=0.5)
                    run_id = started["run"]["runId"]
                    for planned in started["battles"]:
                        queries.start_battle(run_id, planned["persona"]["id"], planned["versionId"],
                                             planned["pairOrder"])
                        if planned["versionId"] == candidate:
                            pairs.append((names.index(planned["persona"]["name"]), planned["pairOrder"] == 1))
                    db.execute("update training_runs set status = 'completed', finished_at = now() where id = %s",
                               (run_id,))
                    counts = [pairs_of.count(i) for pairs_of in ([p for p, _ in pairs],) for i in range(personas)]
                    worst = max(worst, max(counts) - min(counts))
                    if never_at_100 is None and len(pairs) >= 100:
                        never_at_100 = counts.count(0)
                plans[(batch, personas)] = {"pairs": pairs, "worst": worst, "never": never_at_100 or 0,
                                            "first": sum(first for _, first in pairs) / len(pairs)}
    return plans


def runner_cuts(runs: int, latency_scale: float = 0.4) -> dict:
    """Real runs (`lib.runner.run_batch`, the simulator's LLM) of batch 4 (two pairs) against a
    candidate identical to the active version, one battle at a time and a 1-second deadline, so the
    deadline cuts late starters: of the pairs it leaves half done, how often the candidate's side
    is the one that finished."""
    import psycopg

    from bench.common import bench_database
    from lib.app import make_llm
    from lib.runner import RunRefused, run_batch

    settings = Settings.from_env({"LLM_PROVIDER": "simulated", "TRAINING_BATCH_SIZE": "4",
                                  "MAX_CONCURRENT_BATTLES": "1", "BATTLE_MAX_TURNS": "1",
                                  "MAX_TRAINING_EXECUTION_TIME_MS": "1000", "DELAY_BETWEEN_BATTLES_MS": "0"})
    with bench_database(personas=12) as (url, store), psycopg.connect(url, autocommit=True) as db:
        active = db.execute("select (training_ensure_active_version()).id").fetchone()[0]
        candidate = db.execute("insert into training_versions (parent_id, status, change, decision) values "
                               "(%s, 'candidate', 'bench: no change', 'pending') returning id",
                               (active,)).fetchone()[0]
        for _ in range(runs):
            try:
                run_batch(settings, store, make_llm(settings, latency_scale), trigger="cli")
            except RunRefused:
                continue
        halves = db.execute(
            "select count(*) filter (where version_id = %s), count(*) from sandbox_battles b "
            "where pair_order is not null and status = 'completed' and not exists ("
            "  select 1 from sandbox_battles o where o.run_id = b.run_id and o.persona_id = b.persona_id "
            "  and o.id <> b.id and o.status = 'completed')", (candidate,)).fetchone()
        pairs = db.execute("select count(*) from sandbox_battles where pair_order = 1").fetchone()[0]
    return {"pairs": pairs, "half_done": halves[1], "candidate_finished": halves[0]}


def cut_adoption(plan: list[tuple[int, bool]], personas: int, cut: float, fixed_order: bool, canaries: int,
                 seed: int, max_pairs: int = 100) -> float:
    """No effect; each persona its own level and spread. A deadline cuts the late starter's battle
    when its call is weak (below the persona's level) with probability `cut`; a cut pair counts for
    neither side. Pairs follow the plan's personas and order (or the candidate always second)."""
    rng = random.Random(seed)
    levels = [rng.uniform(40, 85) for _ in range(personas)]
    spreads = [rng.choice(PERSONA_SPREADS) / math.sqrt(2) for _ in range(personas)]
    adopted = 0
    for _ in range(canaries):
        start = rng.randrange(len(plan))
        wealth = canary.Wealth()
        step = 0
        while wealth.n < max_pairs:
            persona, candidate_first = plan[(start + step) % len(plan)]
            step += 1
            active = rng.gauss(levels[persona], spreads[persona])
            candidate = rng.gauss(levels[persona], spreads[persona])
            late = active if (candidate_first and not fixed_order) else candidate
            if late < levels[persona] and rng.random() < cut:
                continue
            wealth = wealth.add(round(clip(candidate)) - round(clip(active)))
            look = canary.decide_from_wealth(wealth, max_pairs)
            if look.decision != canary.PENDING:
                adopted += look.decision == canary.ADOPTED
                break
    return adopted / canaries


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.canary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 canaries per shape, no pairing section")
    parser.add_argument("--canaries", type=int, help="canaries per shape and effect (default 2000)")
    parser.add_argument("--spread-pairs", type=int, default=600, help="simulated pairs measuring the spread")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    canaries = args.canaries or (200 if args.quick else 2000)
    started = time.monotonic()
    measured = simulated_pairs(args.spread_pairs, seed=args.seed)
    centre = statistics.mean(measured)
    simulator = [d - centre for d in measured]
    plus_five = tactic_with_effect(5.0)
    checked = simulated_pairs(max(100, args.spread_pairs // 2), seed=args.seed + 1, tactics_b=(plus_five,))
    print(f"simulator: {len(measured)} pairs, spread {statistics.stdev(measured):.2f} points; a tactic with hidden "
          f"effect {tactic_effect(plus_five):+.2f} moves the score by {statistics.mean(checked):+.2f} ± "
          f"{statistics.stdev(checked) / len(checked) ** 0.5:.2f} (s.e.)")
    margin = 2 * math.sqrt(0.025 * 0.975 / canaries)
    print(f"rule: lib.canary (betting, bets {canary.BETS}, from {canary.MIN_PAIRS} pairs); "
          f"{canaries} canaries per shape and effect, one path to 10,000 pairs serving every max; Monte-Carlo "
          f"margin (2 s.e.) at 2.5%: ±{margin:.1%}\n")
    names = list(shape_streams(simulator))
    checks = min(20, canaries)
    with multiprocessing.get_context("spawn").Pool(2) as pool:  # no fork of a threaded process
        shapes = pool.map(shape_rows, [(name, simulator, canaries, checks, args.seed) for name in names])
    print(f"checked: {checks} canaries per shape and effect replayed through lib.canary.decide_from_wealth at "
          f"max 100 and 1,000, every run size: identical decisions")
    header = ("| shape | spread | pairs/run | no effect: adopted / both, max 100 | max 1,000 | max 10,000 | "
              "+5 adopted ≤100 pairs | +5 pairs to decision |")
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    failures: list[tuple[str, int, int | str]] = []
    for shape in shapes:
        for k in PAIRS_PER_RUN:
            cells = []
            for max_pairs in MAX_PAIRS:
                null = rates(shape[0.0], k, max_pairs)
                both = null["adopted"] + null["rolled_back"]
                if null["adopted"] > 0.025 + margin or both > 0.05 + margin:
                    failures.append((shape["name"], k, max_pairs))
                cells.append(f"{null['adopted']:.1%} / {both:.1%}")
            power = rates(shape[5.0], k, 100)
            to_decision = rates(shape[5.0], k, MAX_PAIRS[-1])
            if shape["spread"] <= 12 and power["adopted"] < 0.90:
                failures.append((shape["name"], k, "+5"))
            print(f"| {shape['name']} | {shape['spread']:.1f} | {k} | {' | '.join(cells)} | {power['adopted']:.1%} | "
                  f"{to_decision['pairs']:.0f} |")
    compare_first_pass(simulator, min(canaries, 500), args.seed)
    if not args.quick:
        largest_bet_alone(max(canaries, 4000), args.seed)
        outlook_check(min(canaries, 1000), args.seed)
        from bench.canary_head_to_head import head_to_head_power, subscores, verdict_shapes

        pair_cost, judge_cost = head_to_head_power(simulator, min(canaries, 500), args.seed, args.spread_pairs)
        verdict_shapes(simulator, min(canaries, 1000), min(canaries, 1000), args.seed, pair_cost, judge_cost)
        subscores(min(canaries, 1000), args.seed, pair_cost)
        pairing(canaries)
    print(f"\n{'every goal held' if not failures else f'goals missed: {failures}'} "
          f"({time.monotonic() - started:.0f}s)")


def pairing(canaries: int) -> None:
    cuts = runner_cuts(runs=60)
    print(f"\nthrough the runner: {cuts['pairs']} pairs planned in 60 runs of batch 4 with a 1 s deadline; "
          f"{cuts['half_done']} left half done by the deadline, the candidate's side the finished one in "
          f"{cuts['candidate_finished']} ({cuts['candidate_finished'] / max(1, cuts['half_done']):.0%}; "
          f"with the old fixed order it was the same side every time)")
    configs = [(3, 12), (3, 14), (3, 15), (5, 12), (5, 14), (5, 15)]
    plans = pairing_plans(configs, runs=150)
    print("\n| batch | personas | pair counts: most − least, ever | never paired after 100 pairs | candidate first | "
          "no effect adopted, late starter's weak calls cut 10% / 30%: fair coin | fixed order (candidate second) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for (batch, personas), plan in plans.items():
        fair = [cut_adoption(plan["pairs"], personas, cut, False, canaries, seed=batch * 100 + personas)
                for cut in (0.1, 0.3)]
        fixed = [cut_adoption(plan["pairs"], personas, cut, True, canaries, seed=batch * 100 + personas)
                 for cut in (0.1, 0.3)]
        print(f"| {batch} | {personas} | {plan['worst']} | {plan['never']} | {plan['first']:.0%} | "
              f"{fair[0]:.1%} / {fair[1]:.1%} | {fixed[0]:.1%} / {fixed[1]:.1%} |")


if __name__ == "__main__":
    main()

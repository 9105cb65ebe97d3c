"""The canary's error rates under the looks the system really takes, by simulation.

    python -m bench.canary              # about 10 s on 2 cores
    python -m bench.canary --quick      # fewer canaries, a few seconds

1. **The spread.** Simulated battles (lib/simulator.py, through `lib.battle.fight`, no latency):
   pairs of battles of the same closer on the same persona with different battle ids. Their
   differences, centred on 0 (their mean is 0 but for sampling noise), are the paired differences
   of a canary with no true effect: the battle-to-battle spread the simulator gives.
2. **The canaries.** For each true effect (0, +5, −5 points) and each number of pairs a run adds
   (2 for the default batch of 5, 5 for a batch of 10, and 1: the most looks possible), many
   canaries: each run adds pairs drawn from the measured differences plus the effect, and after
   every run `lib.canary` decides exactly as the system does, until a decision or
   CANARY_MAX_PAIRS.
3. **A check that the effect is what a tactic does:** a tactic whose hidden effect is about +5,
   battled against the same closer without it, moves the simulated score by about 5.

The claims: no effect → at most 5% adopted; +5 → at least 80% adopted within CANARY_MAX_PAIRS;
−5 → at least 80% rolled back and none adopted.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time
from decimal import Decimal

from lib import canary
from lib.battle import BattleState, BattleSetup, closer_system_prompt, fight
from lib.config import Settings
from lib.llm import LLM, CallContext
from lib.personas import CATALOG
from lib.simulator import SimulatedTransport, tactic_effect

EFFECTS = (0.0, 5.0, -5.0)
PAIRS_PER_RUN = (2, 5, 1)


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
        n, total, squares = 0, 0.0, 0.0
        while True:
            for _ in range(pairs_per_run):
                d = rng.choice(null_diffs) + effect
                n, total, squares = n + 1, total + d, squares + d * d
            look = canary.decide_from_sums(n, total, squares, max_pairs)
            if look.decision != canary.PENDING:
                break
        counts[look.decision] += 1
        used.append(n)
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
            sd = max((squares - n * mean * mean) / (n - 1), canary.VARIANCE_FLOOR) ** 0.5
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.canary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 canaries per row and 200 spread pairs")
    parser.add_argument("--canaries", type=int, help="canaries per row (default 2000)")
    parser.add_argument("--spread-pairs", type=int, help="simulated pairs measuring the spread (default 600)")
    parser.add_argument("--max-pairs", type=int, default=Settings.from_env({}).canary_max_pairs,
                        help="CANARY_MAX_PAIRS (default: the setting's default)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    canaries = args.canaries or (300 if args.quick else 2000)
    spread_pairs = args.spread_pairs or (200 if args.quick else 600)

    started = time.monotonic()
    measured = simulated_pairs(spread_pairs, seed=args.seed)
    centre = statistics.mean(measured)
    null_diffs = [d - centre for d in measured]
    print(f"spread: {spread_pairs} simulated pairs (same closer, same persona): mean difference "
          f"{centre:+.2f} (centred to 0), standard deviation {statistics.stdev(measured):.2f} points "
          f"({time.monotonic() - started:.1f}s)")
    plus_five = tactic_with_effect(5.0)
    checked = simulated_pairs(max(100, spread_pairs // 2), seed=args.seed + 1, tactics_b=(plus_five,))
    print(f"check: a tactic with hidden effect {tactic_effect(plus_five):+.2f} moves the simulated score by "
          f"{statistics.mean(checked):+.2f} ± {statistics.stdev(checked) / len(checked) ** 0.5:.2f} (s.e.)")
    print(f"method: 95% confidence sequence (normal mixture, n0={canary.MIXTURE_PAIRS}), a look after every run, "
          f"no decision before {canary.MIN_PAIRS} pairs, CANARY_MAX_PAIRS={args.max_pairs}; "
          f"{canaries} canaries per row\n")
    print(f"{'true effect':>11}  {'pairs/run':>9}  {'adopted':>8}  {'rolled back':>11}  {'inconclusive':>12}  "
          f"{'mean pairs':>10}  claim")
    failures = []
    for effect in EFFECTS:
        for pairs_per_run in PAIRS_PER_RUN:
            rates = run_canaries(null_diffs, effect, pairs_per_run, args.max_pairs, canaries,
                                 seed=args.seed * 1000 + pairs_per_run * 10 + int(effect))
            if effect == 0:
                claim, held = "adopted <= 5%", rates["adopted"] <= 0.05
            elif effect > 0:
                claim, held = "adopted >= 80%", rates["adopted"] >= 0.80
            else:
                claim = "rolled back >= 80%, none adopted"
                held = rates["rolled_back"] >= 0.80 and rates["adopted_count"] == 0
            if not held:
                failures.append((effect, pairs_per_run))
            print(f"{effect:>+11.0f}  {pairs_per_run:>9}  {rates['adopted']:>8.1%}  {rates['rolled_back']:>11.1%}  "
                  f"{rates['inconclusive']:>12.1%}  {rates['mean_pairs']:>10.1f}  {claim}: "
                  f"{'held' if held else 'FAILED'}")
    naive = naive_adoption(null_diffs, 2, args.max_pairs, canaries, seed=args.seed)
    print(f"\nfor comparison, a fixed-n 95% interval (mean ± 1.96·s/√n) looked at after every run of 2 pairs "
          f"adopts {naive:.1%} of canaries with no effect")
    print(f"\n{'every claim held' if not failures else f'claims failed: {failures}'} "
          f"({time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()

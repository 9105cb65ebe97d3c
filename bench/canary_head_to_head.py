"""The head-to-head verdict against the score difference, for `python -m bench.canary`: power,
pairs to a decision and cost per decision (`lib.head_to_head`, through the simulator's LLM, and as
the simulator's judge draws it for the bimodal row)."""
from __future__ import annotations

import random
import statistics
import time
from decimal import Decimal

from bench.canary import MAX_PAIRS, rates, shape_streams, tactic_with_effect
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


def head_to_head_power(simulator: list[float], canaries: int, seed: int, spread_pairs: int) -> None:
    """The head-to-head verdict against the score difference, by power and cost per decision."""
    from lib.head_to_head import HEAD_TO_HEAD_BETS, HEAD_TO_HEAD_BOUND

    null = simulated_head_to_head(spread_pairs, seed)
    better = simulated_head_to_head(max(100, spread_pairs // 2), seed + 1, (tactic_with_effect(5.0),))
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

"""The canary: is the candidate closer better or worse than the active one, on the same personas?

While a candidate version exists, each run pairs battles by persona: the same persona battles the
active version and the candidate in the same run, in a random order recorded on the battles
(`CANARY_SHARE` of the run's battles go to the candidate; the least-paired personas first), so
persona difficulty cancels out of each paired difference `d = candidate score − active score`,
a number in [−100, 100].

After every run the follow-ups (`lib.followups`) read all the pairs so far, ask `decide`, record
the look and post a decision to Slack; this module only decides (no settings, store or Slack):

* **The decision is a test of "no effect"** that holds at every number of pairs, in finite
  samples. "No effect" means the two versions are interchangeable: swapping which one a pair's
  two battles ran changes nothing about the pair's outcomes (cuts included). Because the order
  within a pair is a fair coin, each difference is then symmetric about 0 given everything before
  it, and for symmetric differences `exp(λS − λ²V/2)` is a supermartingale for every λ
  (de la Peña 1999), with S = Σd and V = Σd². Its normal mixture over λ (Howard, Ramdas,
  McAuliffe and Sekhon 2021, the self-normalised boundary) crosses 1/alpha with probability at
  most alpha by Ville's inequality, however many looks:

      |S| ≥ sqrt((V + ρ) · ln((V + ρ) / (ρ · alpha²))),   ρ = MIXTURE_VARIANCE

  By the symmetry, a useless candidate is adopted with probability at most alpha/2 (2.5%) and
  rolled back with at most alpha/2. No boundedness, no variance estimate, no large-n argument.
* No decision before `MIN_PAIRS` pairs; **adopt** when S is at or above the boundary; **roll
  back** when at or below minus it; **inconclusive** once `max_pairs` (CANARY_MAX_PAIRS) pairs are
  in without either; else pending.
* **The interval shown** (`ci95`) is the same boundary turned around: every μ for which the
  differences minus μ do not cross it, within [−100, 100]. It excludes 0 exactly when the test
  decides. As a confidence sequence for the mean difference it is valid at every n under one more
  assumption: the candidate shifts a pair's difference by a constant μ and leaves it symmetric
  about μ. Without that assumption the test above still holds; the interval is then a measure
  of how far from 0 the pairs are, not a guarantee about the mean. (The bounded-means betting
  interval of Waudby-Smith and Ramdas, 2023, needs no such assumption but pays for the 200-point
  range: bench.canary measures it, adopting +5 within 100 pairs far less often.)

`python -m bench.canary` proves the error rates by simulation (and prints them);
`tests/unit/test_canary.py` runs a smaller version.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeGuard

ALPHA = 0.05
MIN_PAIRS = 10
# The mixture's scale, in squared points: the boundary is tightest when Σd² is a few times this,
# about 20–60 pairs at the 9–12-point spreads where a 5-point difference becomes visible.
MIXTURE_VARIANCE = 1500.0
# The differences' bounds (scores are 0–100): the interval never reaches past them.
LOW, HIGH = -100.0, 100.0
INTERVAL_STEP = 0.5  # points: the scan for the interval's ends, refined by bisection to 0.005

PENDING, ADOPTED, ROLLED_BACK, INCONCLUSIVE = "pending", "adopted", "rolled_back", "inconclusive"


@dataclass(frozen=True)
class Look:
    """One look at a canary: the decision and the figures it rests on."""

    decision: str
    pairs: int
    diff: float | None
    ci95: tuple[float, float] | None
    skipped: int = 0  # differences left out: not a finite number (never part of a decision)


def boundary(squares: float, alpha: float = ALPHA, rho: float = MIXTURE_VARIANCE) -> float:
    """How far from 0 the sum of the differences must be, given the sum of their squares."""
    return math.sqrt((squares + rho) * math.log((squares + rho) / (rho * alpha ** 2)))


def decide_from_sums(n: int, total: float, total_squares: float, max_pairs: int) -> Look:
    """The decision from running sums (n pairs, Σd, Σd²): what the bench calls after every
    simulated run (without the interval, which `decide` adds)."""
    if not (math.isfinite(total) and math.isfinite(total_squares)):
        raise ValueError(f"canary sums must be finite numbers, got total={total} and squares={total_squares}")
    decision = PENDING
    if n >= MIN_PAIRS:
        edge = boundary(total_squares)
        if total >= edge:
            decision = ADOPTED
        elif total <= -edge:
            decision = ROLLED_BACK
        elif n >= max_pairs:
            decision = INCONCLUSIVE
    return Look(decision, n, total / n if n else None, None)


def decide(diffs: Sequence[float | None], max_pairs: int) -> Look:
    """The decision after a look at these paired differences (candidate − active), with its
    interval. A difference that is not a finite number (None, NaN, ±inf) is skipped and counted in
    `skipped`."""
    values = [float(d) for d in diffs if _finite(d)]
    n, total, squares = len(values), sum(values), sum(v * v for v in values)
    look = decide_from_sums(n, total, squares, max_pairs)
    return replace(look, ci95=interval(n, total, squares), skipped=len(diffs) - len(values))


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def interval(n: int, total: float, total_squares: float, alpha: float = ALPHA) -> tuple[float, float] | None:
    """The boundary turned around (None without pairs): the smallest and largest μ in [−100, 100]
    for which the differences minus μ stay inside it. From the running sums alone."""
    if n == 0:
        return None

    def inside(mu: float) -> bool:
        shifted_squares = max(total_squares - 2 * mu * total + n * mu * mu, 0.0)
        return abs(total - n * mu) < boundary(shifted_squares, alpha)

    steps = int((HIGH - LOW) / INTERVAL_STEP)
    grid = [LOW + INTERVAL_STEP * i for i in range(steps + 1)]
    hits = [i for i, mu in enumerate(grid) if inside(mu)]
    centre = total / n
    if not hits:  # narrower than the scan's step: only the mean's neighbourhood is inside
        first = last = min(range(len(grid)), key=lambda i: abs(grid[i] - centre))
        grid_inside = [centre]
    else:
        first, last = hits[0], hits[-1]
        grid_inside = [grid[first], grid[last]]

    def refine(inner: float, outer: float) -> float:
        while abs(inner - outer) > 0.005:
            middle = (inner + outer) / 2
            inner, outer = (middle, outer) if inside(middle) else (inner, middle)
        return inner

    low = grid_inside[0] if first == 0 else refine(grid_inside[0], grid[first - 1])
    high = grid_inside[-1] if last == steps else refine(grid_inside[-1], grid[last + 1])
    return low, high


# The outlook: how many pairs a 5-point difference needs at the spread observed so far.
OUTLOOK_EFFECT = 5.0
# Calibrated, not 1.28: the formula below ignores crossings before n, and with 0.9 it matches the
# simulated 90th percentile of pairs to a decision within 7% at spreads 5–33 (bench.canary prints it).
OUTLOOK_POWER_Z = 0.9


def pairs_for_effect(spread: float, effect: float = OUTLOOK_EFFECT, limit: int = 100_000) -> int | None:
    """About how many pairs a true difference of `effect` points needs to be adopted nine times in
    ten when the differences spread `spread` points (their standard deviation): the first n where
    the expected sum, less OUTLOOK_POWER_Z standard deviations, reaches the boundary. None beyond
    `limit`."""
    n = MIN_PAIRS
    while n <= limit:
        if effect * n - OUTLOOK_POWER_Z * spread * math.sqrt(n) >= boundary(n * (spread ** 2 + effect ** 2)):
            return n
        n = n + 1 if n < 1000 else int(n * 1.01) + 1
    return None


def outlook(pairs: int, spread: float | None) -> tuple[int | None, int | None]:
    """For a canary at `pairs` pairs whose differences spread `spread` points: about how many pairs
    in all a 5-point difference needs (`pairsFor5`), and how many more (`morePairsFor5`)."""
    needed = None if spread is None else pairs_for_effect(float(spread))
    return needed, None if needed is None else max(0, needed - pairs)

"""The canary: is the candidate closer better or worse than the active one, on the same personas?

While a candidate version exists, each run pairs battles by persona: the same persona battles the
active version and the candidate in the same run (`CANARY_SHARE` of the run's battles go to the
candidate), so persona difficulty cancels out of each paired difference
`d = candidate score − active score`.

After every run the follow-ups (`lib.followups`) read all the pairs so far, ask `decide`, record
the look and post a decision to Slack; this module only decides (no settings, store or Slack):

* The interval is a two-sided 95% **confidence sequence** for the mean paired difference:
  Robbins' normal-mixture boundary, with the variance estimated from the pairs (the "asymptotic
  confidence sequence" of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas, 2024; Howard, Ramdas,
  McAuliffe and Sekhon, 2021, eq. 14). With `n` pairs, mean `m` and standard deviation `s`:

      half-width = s · sqrt((n + n0) · ln((n + n0) / (n0 · alpha²))) / n,   n0 = MIXTURE_PAIRS

  Unlike a t-interval, it holds at every `n` at once: the chance that it ever excludes the true
  difference, however often one looks, is at most `alpha`. So looking after every run, whatever
  the batch size and however many battles time out, does not inflate the error rates; and the
  interval shown on the dashboard is honest whenever it is read.
* No decision before `MIN_PAIRS` pairs (the variance estimate needs a few).
* **adopt** when the interval's low end is above 0; **roll back** when its high end is below 0;
  **inconclusive** once `max_pairs` (CANARY_MAX_PAIRS) pairs are in without either; else pending.

`python -m bench.canary` proves the error rates by simulation with the simulator's own
battle-to-battle spread (and prints them); `tests/test_canary.py` runs a smaller version.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
MIN_PAIRS = 10
# The mixture's scale, in pairs: the boundary is tightest (closest to a fixed-n interval) around a
# few times this many pairs, where a 5-point difference becomes visible with the simulator's spread.
MIXTURE_PAIRS = 10
# Scores are whole points: a spread below 1 point is rounding, not evidence.
VARIANCE_FLOOR = 1.0

PENDING, ADOPTED, ROLLED_BACK, INCONCLUSIVE = "pending", "adopted", "rolled_back", "inconclusive"


@dataclass(frozen=True)
class Look:
    """One look at a canary: the decision and the figures it rests on."""

    decision: str
    pairs: int
    diff: float | None
    ci95: tuple[float, float] | None


def half_width(n: int, sd: float, alpha: float = ALPHA, n0: float = MIXTURE_PAIRS) -> float:
    """The confidence sequence's half-width after `n` pairs with standard deviation `sd`."""
    return sd * math.sqrt((n + n0) * math.log((n + n0) / (n0 * alpha ** 2))) / n


def summarise(n: int, total: float, total_squares: float) -> tuple[float | None, tuple[float, float] | None]:
    """Mean difference and its 95% confidence-sequence interval from running sums (None below 2 pairs)."""
    if n == 0:
        return None, None
    mean = total / n
    if n < 2:
        return mean, None
    variance = max((total_squares - n * mean * mean) / (n - 1), VARIANCE_FLOOR)
    h = half_width(n, math.sqrt(variance))
    return mean, (mean - h, mean + h)


def decide_from_sums(n: int, total: float, total_squares: float, max_pairs: int) -> Look:
    """`decide` on running sums: what the bench calls after every simulated run."""
    mean, interval = summarise(n, total, total_squares)
    decision = PENDING
    if n >= MIN_PAIRS and interval is not None:
        if interval[0] > 0:
            decision = ADOPTED
        elif interval[1] < 0:
            decision = ROLLED_BACK
        elif n >= max_pairs:
            decision = INCONCLUSIVE
    return Look(decision, n, mean, interval)


def decide(diffs: list[float], max_pairs: int) -> Look:
    """The decision after a look at these paired differences (candidate − active)."""
    values = [float(d) for d in diffs]
    return decide_from_sums(len(values), sum(values), sum(v * v for v in values), max_pairs)


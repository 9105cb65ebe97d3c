"""The canary: is the candidate closer better or worse than the active one, on the same personas?

While a candidate version exists, each run pairs battles by persona: the same persona battles the
active version and the candidate in the same run, in a random order recorded on the battles
(`CANARY_SHARE` of the run's battles go to the candidate; the least-paired personas first), so
persona difficulty cancels out of each paired difference `d = candidate score − active score`,
a number in [−100, 100].

After every run the follow-ups (`lib.followups`) read all the pairs so far, ask `decide`, record
the look and post a decision to Slack; this module only decides (no settings, store or Slack):

* **The decision is two bets against the candidate's mean difference**, valid at every number of
  pairs in finite samples for ANY differences bounded in [−BOUND, BOUND] (no symmetry, no variance,
  no large-n argument). To adopt, a bettor starts with 1 and stakes, on each pair, the fraction
  c/BOUND of its wealth per point of d: wealth Π(1 + c·d/BOUND), nonnegative because d ≥ −BOUND.
  If the differences' mean given the pairs before is ≤ 0 (the candidate is no better), each
  factor has expectation ≤ 1, so the wealth is a nonnegative supermartingale, and so is an average
  over several c (`BETS`); by Ville's inequality it ever reaches 2/alpha with probability at most
  alpha/2 (2.5%), however many looks (Waudby-Smith and Ramdas 2023, betting with constant bets
  mixed). Rolling back is the mirror bet Π(1 − c·d/BOUND), at most alpha/2 when the candidate is
  no worse. So a useless candidate is adopted at most 2.5% and decided either way at most 5%.
* **The price of that guarantee**: c ≤ 1 caps the bet, so the evidence per pair is at most
  about ln(1 + effect/BOUND): even a candidate 5 points better on every single pair needs 76 pairs
  (a mean-zero difference can be +5 on 95.2% of pairs and −100 on the rest, and 75 such pairs in
  a row happen 2.6% of the time). On totals spread 9.5 points, +5 is adopted about 3 times in 4
  within 100 pairs, not 9 in 10; the largest bet allowed, alone, reaches only about 4 in 5
  (docs/versions.md). A verdict (the head-to-head, [−1, 1]) moves far more per pair relative to
  its bound, so even its smaller stakes grow wealth faster.
* No decision before `MIN_PAIRS` pairs; **adopt** when the adopting bet reaches 2/alpha; **roll
  back** when the mirror bet does; **inconclusive** once `max_pairs` (CANARY_MAX_PAIRS) pairs are
  in without either; else pending.
* **The interval shown** (`ci95`) is the same bets turned around: every μ for which neither bet on
  "the mean is μ" (stakes c/(BOUND ± μ), so the wealth stays nonnegative) reaches 2/alpha. It is a
  95% confidence sequence at every n for the mean difference whenever each pair's difference has
  mean μ given the pairs before it (any shape, bounded), and from MIN_PAIRS on it excludes 0
  exactly when the test decides (the figures shown are rounded outward to 0.01, so a lower end
  just above 0 can show as 0.00).

`python -m bench.canary` proves the error rates by simulation (and prints them);
`tests/unit/test_canary.py` runs a smaller version.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeGuard

ALPHA = 0.05  # both sides together: each bet alpha/2
MIN_PAIRS = 10
# The differences' bound: scores are 0–100. Also what the interval never reaches past.
BOUND = 100.0
# The bets mixed, (c, weight): c is the stake as a fraction of the largest one the bound allows.
# On score differences the largest bet finds +5 soonest (the bound, not the spread, limits it);
# the smaller ones keep power on wide, bimodal spreads (bench.canary measured the mix).
Bets = tuple[tuple[float, float], ...]
BETS: Bets = ((0.99, 0.9), (0.6, 0.05), (0.3, 0.05))
THRESHOLD = math.log(2 / ALPHA)  # ln 40: the log-wealth at which a bet decides

PENDING, ADOPTED, ROLLED_BACK, INCONCLUSIVE = "pending", "adopted", "rolled_back", "inconclusive"


@dataclass(frozen=True)
class Look:
    """One look at a canary: the decision and the figures it rests on."""

    decision: str
    pairs: int
    diff: float | None
    ci95: tuple[float, float] | None
    skipped: int = 0  # differences left out: not a finite number (never part of a decision)


@dataclass(frozen=True)
class Wealth:
    """The running sums a look needs: n, Σd and, per bet, Σ ln(1 ± c·d/bound)."""

    bets: Bets = BETS
    bound: float = BOUND
    n: int = 0
    total: float = 0.0
    up: tuple[float, ...] = ()
    down: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        # The guarantee needs every factor positive (c < 1) and the mixture to start at most at 1
        # (checked once, on the empty sums: `add` copies them).
        if self.n > 0:
            return
        if not self.bets or not all(0 < c < 1 and w > 0 for c, w in self.bets) \
                or sum(w for _, w in self.bets) > 1 + 1e-9:
            raise ValueError(f"canary bets need stakes in (0, 1) and weights summing to at most 1, got {self.bets}")

    def add(self, d: float) -> Wealth:
        bound = self.bound
        if not (math.isfinite(d) and -bound <= d <= bound):
            raise ValueError(f"a canary difference must be a finite number in [{-bound:g}, {bound:g}], got {d}")
        up, down = self.up or (0.0,) * len(self.bets), self.down or (0.0,) * len(self.bets)
        return replace(self, n=self.n + 1, total=self.total + d,
                       up=tuple(u + math.log1p(c * d / bound) for u, (c, _) in zip(up, self.bets, strict=True)),
                       down=tuple(v + math.log1p(-c * d / bound) for v, (c, _) in zip(down, self.bets, strict=True)))


def mixed(log_wealths: Iterable[float], bets: Bets = BETS) -> float:
    """ln Σ_j w_j·exp(L_j): the log-wealth of the bets together."""
    terms = [math.log(w) + L for L, (_, w) in zip(log_wealths, bets, strict=True)]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def decide_from_wealth(wealth: Wealth, max_pairs: int) -> Look:
    """The decision from the running sums: what the bench calls after every simulated run
    (without the interval, which `decide` adds)."""
    decision = PENDING
    if wealth.n >= MIN_PAIRS:
        up, down = mixed(wealth.up, wealth.bets), mixed(wealth.down, wealth.bets)
        if up >= THRESHOLD and up >= down:
            decision = ADOPTED
        elif down >= THRESHOLD:
            decision = ROLLED_BACK
        elif wealth.n >= max_pairs:
            decision = INCONCLUSIVE
    return Look(decision, wealth.n, wealth.total / wealth.n if wealth.n else None, None)


def decide(diffs: Sequence[float | None], max_pairs: int, bound: float = BOUND, bets: Bets = BETS) -> Look:
    """The decision after a look at these paired differences (candidate − active), with its
    interval. A difference that is not a finite number (None, NaN, ±inf) is skipped and counted in
    `skipped`; one outside [−bound, bound] is refused (ValueError: the guarantee rests on it)."""
    values = [float(d) for d in diffs if _finite(d)]
    wealth = Wealth(bets, bound)
    for d in values:
        wealth = wealth.add(d)
    look = decide_from_wealth(wealth, max_pairs)
    ci95 = interval(values, bound, bets)
    if ci95 is not None:
        # At μ = 0 the interval's bets are the test's: 0 is inside unless a bet has reached the
        # threshold. Said exactly here, where the bisection could stop a hair past 0.
        low, high = ci95
        if mixed(wealth.up, bets) < THRESHOLD:
            low = min(low, 0.0)
        if mixed(wealth.down, bets) < THRESHOLD:
            high = max(high, 0.0)
        ci95 = (low, high)
    return replace(look, ci95=ci95, skipped=len(diffs) - len(values))


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _log_wealth(values: list[float], mu: float, side: int, bound: float, bets: Bets) -> float:
    """The bet that the mean is above μ (side +1) or below it (−1): stakes c/(bound ± μ), the
    largest that keep every factor positive for differences in [−bound, bound]."""
    room = bound + side * mu
    if room <= 0:
        return math.inf
    logs = []
    for c, _ in bets:
        total = 0.0
        for d in values:
            total += math.log1p(side * c * (d - mu) / room)
        logs.append(total)
    return mixed(logs, bets)


def interval(values: list[float], bound: float = BOUND, bets: Bets = BETS) -> tuple[float, float] | None:
    """Every μ in [−bound, bound] that neither bet rules out (None without pairs), by bisection:
    the bet on "above μ" loses wealth as μ grows, the bet on "below μ" gains it."""
    if not values:
        return None

    def end(side: int) -> float:
        inside, outside = sum(values) / len(values), -side * bound
        if _log_wealth(values, inside, side, bound, bets) >= THRESHOLD:
            return inside  # only when every value is at the bound (by Jensen): the interval ends at the mean
        while abs(inside - outside) > 0.005 * bound / BOUND:
            middle = (inside + outside) / 2
            inside, outside = (middle, outside) if _log_wealth(values, middle, side, bound, bets) < THRESHOLD \
                else (inside, middle)
        return inside

    return end(+1), end(-1)


# The outlook: how many pairs a 5-point difference needs at the spread observed so far.
OUTLOOK_EFFECT = 5.0
# Calibrated against bench.canary's simulated 90th percentile of pairs to a decision (it prints the check).
OUTLOOK_POWER_Z = 0.9
_NORMAL_GRID = [i / 20 for i in range(-120, 121)]  # ±6 standard deviations, for the expectations below


def _growth(effect: float, spread: float, c: float) -> tuple[float, float]:
    """Mean and standard deviation of ln(1 + c·d/BOUND) for d normal(effect, spread), d within the bound."""
    weights = [math.exp(-z * z / 2) for z in _NORMAL_GRID]
    logs = [math.log1p(c * min(BOUND, max(-BOUND, effect + spread * z)) / BOUND) for z in _NORMAL_GRID]
    mean = sum(w * x for w, x in zip(weights, logs, strict=True)) / sum(weights)
    variance = sum(w * (x - mean) ** 2 for w, x in zip(weights, logs, strict=True)) / sum(weights)
    return mean, math.sqrt(variance)


def pairs_for_effect(spread: float, effect: float = OUTLOOK_EFFECT, limit: int = 100_000) -> int | None:
    """About how many pairs a true difference of `effect` points needs to be adopted nine times in
    ten when the differences spread `spread` points (their standard deviation): the first n where
    one of the bets' expected log-wealth, less OUTLOOK_POWER_Z standard deviations, reaches the
    threshold. None beyond `limit`."""
    bets = [(math.log(w), *_growth(effect, spread, c)) for c, w in BETS]
    n = MIN_PAIRS
    while n <= limit:
        if any(log_w + n * mean - OUTLOOK_POWER_Z * sd * math.sqrt(n) >= THRESHOLD for log_w, mean, sd in bets):
            return n
        n = n + 1 if n < 1000 else int(n * 1.01) + 1
    return None


def outlook(pairs: int, spread: float | None) -> tuple[int | None, int | None]:
    """For a canary at `pairs` pairs whose differences spread `spread` points: about how many pairs
    in all a 5-point difference needs (`pairsFor5`), and how many more (`morePairsFor5`)."""
    needed = None if spread is None else pairs_for_effect(float(spread))
    return needed, None if needed is None else max(0, needed - pairs)


def outlook_note(spread: float | None, needed: int | None, more: int | None, max_pairs: int) -> str | None:
    """The outlook as `versions` and the dashboard say it (None below 2 pairs), with advice when a
    5-point difference needs more pairs than CANARY_MAX_PAIRS (`max_pairs`) allows."""
    if spread is None:
        return None
    note = (f"at this spread ({spread:.1f} points), a 5-point difference takes "
            + (f"about {needed} pairs in all ({more} more)" if needed is not None else "more than 100,000 pairs"))
    if needed is None or needed > max_pairs:
        note += ("; raise CANARY_MAX_PAIRS to reach it, or decide on head-to-head verdicts "
                 "(CANARY_VERDICT=head_to_head), which need far fewer pairs on wide spreads")
    return note


# A lean worth a warning: this share of decisive verdicts to one position, over at least this many.
STRONG_LEAN, STRONG_LEAN_VERDICTS = 0.7, 20


def lean_note(first_shown_won: int, decisive: int) -> str:
    """A head-to-head judge's lean to the call it reads first, as `versions` and the dashboard say it."""
    share = first_shown_won / decisive
    note = (f"the judge chose the call it read first in {first_shown_won} of {decisive} decisive verdicts "
            f"({share:.0%}; 50% is no lean). The order is a fair coin per pair, so the lean favours neither version")
    if decisive >= STRONG_LEAN_VERDICTS and max(share, 1 - share) >= STRONG_LEAN:
        note += ("; but it is strong: the verdicts follow the order more than the calls, so the canary needs more "
                 "pairs (a stronger REFEREE_MODEL, or CANARY_VERDICT=score, may decide sooner)")
    return note


# Half-done pairs worth a warning: at least this many with the candidate's side missing, and at
# least twice as many as with the active version's.
LOPSIDED_PAIRS = 5


def incomplete_note(candidate_missing: int, active_missing: int) -> str | None:
    """What `versions` and the dashboard say of the pairs left out with one side completed (None
    without any): a candidate that loses more of its pairs (its calls fail, run long or reach the
    cost cap) is one the decision, which reads complete pairs only, cannot see."""
    if not candidate_missing and not active_missing:
        return None
    note = (f"pairs left out with one side unfinished: the candidate's in {candidate_missing}, "
            f"the active version's in {active_missing}")
    if candidate_missing >= LOPSIDED_PAIRS and candidate_missing >= 2 * active_missing:
        note += ("; the candidate loses more of its pairs, which the decision cannot see: look at its battles' "
                 "errors before trusting an adoption")
    return note

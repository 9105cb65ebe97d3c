"""The canary: is the candidate closer better or worse than the active one, on the same personas?

While a candidate version exists, each run pairs battles by persona: the same persona battles the
active version and the candidate in the same run (`CANARY_SHARE` of the run's battles go to the
candidate), so persona difficulty cancels out of each paired difference
`d = candidate score − active score`.

After every run the system looks at all the pairs so far and decides (`decide`):

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
import time
from dataclasses import dataclass

from lib import slack
from lib.config import Settings
from lib.log import log
from lib.store import JSONObject, Store
from lib.store.queries import Queries

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


def review(settings: Settings, store: Store, *, deadline: float, simulated: bool = False) -> JSONObject | None:
    """The look after a run: reads the canary's pairs, records the figures or the decision, and
    posts a decision to Slack. Returns what the run's summary shows (None without a candidate)."""

    queries = Queries(store)
    canary = queries.canary_pairs(deadline=deadline)
    if canary is None:
        return None
    look = decide(canary["diffs"], settings.canary_max_pairs)
    rounded = None if look.diff is None else round(look.diff, 2)
    ci95 = None if look.ci95 is None else [round(look.ci95[0], 2), round(look.ci95[1], 2)]
    outcome = queries.record_canary(canary["candidateId"], look.decision, look.pairs, rounded,
                                    ci95, settings.canary_max_pairs, deadline=deadline)
    summary: JSONObject = {"candidateId": canary["candidateId"], "activeId": canary["activeId"], "pairs": look.pairs,
               "maxPairs": settings.canary_max_pairs, "diff": rounded, "ci95": ci95,
               "decision": look.decision if outcome["recorded"] else "superseded"}
    if outcome.get("decided"):
        log("canary_decided", candidateId=canary["candidateId"], decision=look.decision, pairs=look.pairs,
            diff=rounded)
        summary["message"] = outcome["message"]
        failure = slack.send(settings, slack.canary_decision_message(outcome, settings.app_url, simulated),
                             timeout=max(0.5, min(5.0, deadline - time.monotonic())),
                             candidateId=canary["candidateId"])
        if failure:
            summary["slackError"] = str(failure)
    return summary

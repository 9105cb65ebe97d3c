"""Which confirmation rule? A simulation of a noisy referee: `python -m bench.referee_rule`.

Each battle has a true quality q (the referee's noise-free opinion, normal around 78 with sd 9,
so about 3% are at or above the 95 cutoff). Each referee call returns q plus judge noise (normal,
sd σ) and, with a small probability, a glitch (an extra error of sd 12). A battle whose first
score reaches the cutoff is a candidate and is re-scored once; the rules decide from the two
scores. For each rule the table prints, per 1,000 battles: the flags raised, then the precision
(flags whose q is at or above the cutoff), the clear mistakes (flags with q more than 3 points
under the cutoff) and the recall (true breakthroughs flagged, out of all with q at or above it).
Seeded: the same figures on every run.
"""
from __future__ import annotations

import random

from bench.common import table

CUTOFF = 95.0
MARGIN = 3.0
BATTLES = 200_000
RULES = {
    "one score": lambda first, second: True,
    "both >= cutoff": lambda first, second: second >= CUTOFF,
    "mean >= cutoff": lambda first, second: (first + second) / 2 >= CUTOFF,
    "mean + floor (ours)": lambda first, second: (first + second) / 2 >= CUTOFF and second >= CUTOFF - MARGIN,
}


def call(rng: random.Random, quality: float, sigma: float, glitch: float) -> float:
    error = rng.gauss(0, sigma) + (rng.gauss(0, 12) if rng.random() < glitch else 0.0)
    return min(100.0, max(0.0, round(quality + error, 2)))


def simulate(sigma: float, glitch: float, seed: int = 7) -> list[list]:
    rng = random.Random(seed)
    real = 0
    counts = {name: [0, 0, 0] for name in RULES}  # flags, real flags, clear mistakes
    for _ in range(BATTLES):
        quality = min(100.0, max(0.0, rng.gauss(78, 9)))
        real += quality >= CUTOFF
        first = call(rng, quality, sigma, glitch)
        if first < CUTOFF:
            continue
        second = call(rng, quality, sigma, glitch)
        for name, rule in RULES.items():
            if rule(first, second):
                counts[name][0] += 1
                counts[name][1] += quality >= CUTOFF
                counts[name][2] += quality < CUTOFF - MARGIN
    rows = []
    for name, (flags, good, clear) in counts.items():
        rows.append([f"{sigma:g}", f"{glitch:.0%}", name, f"{1000 * flags / BATTLES:.2f}",
                     f"{good / flags:.1%}" if flags else "-", f"{clear / flags:.1%}" if flags else "-",
                     f"{good / real:.1%}" if real else "-"])
    return rows


def main() -> None:
    rows = []
    for sigma in (2.0, 3.0, 5.0):
        for glitch in (0.0, 0.02):
            rows.extend(simulate(sigma, glitch))
    print(__doc__.split("\n\n")[1].replace("\n", " "))
    print()
    print(table(["judge sd", "glitches", "rule", "flags/1000", "precision", "clear mistakes", "recall"], rows))


if __name__ == "__main__":
    main()

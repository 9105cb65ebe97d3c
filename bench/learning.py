"""The learning curve, measured: a simulated month of autonomous training, no person acting.

`python -m bench.learning` runs the real loop (`lib.training.train_once`: the runner, the canary's
look, the proposal queue's step, the scout in this process) on the embedded PostgreSQL with the
simulator answering every call at once: 48 runs a day of the default batch (5), `AUTO_PROPOSE=all`
with the simulated proposer (`PROPOSER_MODEL`), every other setting at its default. The simulator
knows each tactic's hidden effect, so the closer's **true** quality (the simulator's expected score
for the active version) is printed day by day next to the observed mean score, and at the end:
proposals, adoptions, rollbacks, inconclusive canaries, adoptions whose true effect was ≤ 0, the
largest harmful effect ever adopted, spend, and spend per adopted improvement. The curve is drawn
to docs/learning-curve.png (zlib and struct: no plotting dependency).

Goals (issue 20): true quality rises by at least half of the best reachable gain within 30 days;
no tactic with a true effect ≤ −2 is ever adopted; the whole bench runs under 10 minutes here.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import psycopg

from bench.common import bench_database
from bench.png import Series, line_chart
from lib.app import make_llm
from lib.config import PROJECT_ROOT, Settings
from lib.simulator import SKILL_CEILING, expected_score, skill_of
from lib.training import train_once

PNG_PATH = PROJECT_ROOT / "docs" / "learning-curve.png"
HARMFUL = -2.0


class TrueQuality:
    """The simulator's expected score (`lib.simulator.expected_score`) for a closer's tactics over
    the active personas, remembered by skill."""

    def __init__(self, difficulties: list[int]):
        self.difficulties = difficulties
        self._cache: dict[float, float] = {}

    def of_skill(self, skill: float) -> float:
        key = round(skill, 6)
        if key not in self._cache:
            self._cache[key] = expected_score(skill, self.difficulties)
        return self._cache[key]

    def of(self, tactics: list[str]) -> float:
        return self.of_skill(skill_of(tactics))


def version_tactics(conn, version_id: int) -> list[str]:
    return [row[0] for row in conn.execute(
        "select t.tactic_text from training_versions v, unnest(v.tactic_ids) with ordinality u(id, pos) "
        "join sandbox_tactics t on t.id = u.id where v.id = %s order by u.pos", (version_id,))]


def active_version(conn) -> int:
    return conn.execute("select id from training_versions where status = 'active'").fetchone()[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.learning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs-per-day", type=int, default=48)
    parser.add_argument("--png", type=Path, default=PNG_PATH, help=f"the curve (default {PNG_PATH})")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with bench_database(personas=None, name="learning") as (url, store), psycopg.connect(url, autocommit=True) as conn:
        settings = Settings.from_env({
            "USE_LOCAL_DB": "true", "LOCAL_DB_URL": url, "LLM_PROVIDER": "simulated", "AUTO_PROPOSE": "all",
            "PROPOSER_MODEL": "gpt-4o-mini", "DELAY_BETWEEN_BATTLES_MS": "0",
            "MAX_TRAINING_EXECUTION_TIME_MS": "600000"})
        llm = make_llm(settings, latency_scale=0)
        difficulties = [int(row[0]) for row in conn.execute(
            "select coalesce((characteristics ->> 'difficulty')::int, 3) from sandbox_personas where is_active")]
        truth = TrueQuality(difficulties)
        baseline = truth.of([])
        best = truth.of_skill(SKILL_CEILING) - baseline
        print(f"a simulated month: {args.days} days × {args.runs_per_day} runs of {settings.batch_size} battles, "
              f"AUTO_PROPOSE=all, PROPOSER_EVERY={settings.proposer_every}, CANARY_MAX_PAIRS="
              f"{settings.canary_max_pairs}, MAX_ACTIVE_TACTICS={settings.max_active_tactics}, "
              f"{len(difficulties)} personas")
        print(f"true quality at the start {baseline:.2f}; best reachable {baseline + best:.2f} "
              f"(+{best:.2f}: the simulator's skill ceiling of {SKILL_CEILING:g} points)\n")
        print(f"{'day':>3}  {'true':>6}  {'observed':>8}  {'active':>6}  {'tactics':>7}  {'queued':>6}  "
              f"{'adopted':>7}  {'rolled back':>11}  {'inconcl.':>8}  {'elapsed':>7}")
        days: list[float] = [0]
        true_line, observed_line = [baseline], [float("nan")]
        for day in range(1, args.days + 1):
            scores = []
            for _ in range(args.runs_per_day):
                trained = train_once(settings, store, llm, trigger="cli", scout="in_process")
                scores += [float(s) for (s,) in conn.execute(
                    "select referee_score from sandbox_battles where run_id = %s and status = 'completed'",
                    (trained.batch["runId"],))]
            active = active_version(conn)
            tactics = version_tactics(conn, active)
            counts = dict(conn.execute("select status, count(*) from training_proposals group by status").fetchall())
            days.append(day)
            true_line.append(truth.of(tactics))
            observed_line.append(statistics.fmean(scores) if scores else float("nan"))
            print(f"{day:>3}  {true_line[-1]:>6.2f}  {observed_line[-1]:>8.2f}  {'v' + str(active):>6}  "
                  f"{len(tactics):>7}  {counts.get('queued', 0):>6}  {counts.get('adopted', 0):>7}  "
                  f"{counts.get('rolled_back', 0):>11}  {counts.get('inconclusive', 0):>8}  "
                  f"{time.monotonic() - started:>6.0f}s", flush=True)
        report(conn, truth, baseline, best, true_line, time.monotonic() - started)
        markers = decision_days(conn, args.runs_per_day)
    line_chart(args.png, days, [Series(true_line, (31, 119, 180)), Series(observed_line, (150, 150, 150))],
               markers, low=min(v for v in observed_line + true_line if not math.isnan(v)) - 1,
               high=max(v for v in observed_line + true_line if not math.isnan(v)) + 1)
    print(f"curve: {args.png.relative_to(PROJECT_ROOT) if args.png.is_relative_to(PROJECT_ROOT) else args.png} "
          "(blue: true quality; grey: observed mean; green ticks: adoptions; red ticks: rollbacks)")


def report(conn, truth: TrueQuality, baseline: float, best: float, true_line: list[float], elapsed: float) -> None:
    counts = dict(conn.execute("select status, count(*) from training_proposals group by status").fetchall())
    by_source = dict(conn.execute("select source, count(*) from training_proposals where decided_at is distinct "
                                  "from created_at group by source").fetchall())
    refused_at_entry = dict(conn.execute("select source, count(*) from training_proposals where decided_at = created_at "
                                         "group by source").fetchall())
    at_entry = sum(refused_at_entry.values())
    proposed = sum(by_source.values())
    effects = []  # the true effect of each adoption: the version's quality minus its parent's
    for version_id, parent_id in conn.execute(
            "select id, parent_id from training_versions where decision = 'adopted' order by id").fetchall():
        effects.append(truth.of(version_tactics(conn, version_id)) - truth.of(version_tactics(conn, parent_id)))
    spend = sum(float(conn.execute(f"select coalesce(sum({column}), 0) from {table}").fetchone()[0]) for table, column in
                (("training_runs", "total_cost"), ("training_rescores", "cost_usd"), ("training_proposals", "cost_usd")))
    improvements = sum(1 for e in effects if e > 0)
    gain = true_line[-1] - baseline
    print(f"\nproposed {proposed} (" + ", ".join(f"{n} by {source}" for source, n in sorted(by_source.items()))
          + "; refused at entry by the tactic checks: " + ", ".join(f"{n} by {source}" for source, n in
                                                                    sorted(refused_at_entry.items()))
          + f"): adopted {counts.get('adopted', 0)}, rolled back {counts.get('rolled_back', 0)}, "
          f"inconclusive {counts.get('inconclusive', 0)}, refused when taken {counts.get('refused', 0) - at_entry}, "
          f"still queued {counts.get('queued', 0)}, under canary {counts.get('canary', 0)}")
    print(f"adopted with a true effect ≤ 0: {sum(1 for e in effects if e <= 0)}; largest harmful effect adopted: "
          f"{min([e for e in effects if e < 0], default=0.0):+.2f} points; true effects adopted: "
          + (", ".join(f"{e:+.2f}" for e in effects) or "none"))
    print(f"spend ${spend:.2f} (simulated prices: battles, scout re-scores, proposer calls); per adopted improvement "
          + (f"${spend / improvements:.2f}" if improvements else "-"))
    print(f"true quality {baseline:.2f} → {true_line[-1]:.2f} (+{gain:.2f} of a best reachable +{best:.2f}: "
          f"{gain / best * 100:.0f}%); {elapsed:.0f}s")
    print(f"goals: half the best reachable gain {'held' if gain >= best / 2 else 'MISSED'}; nothing with a true "
          f"effect ≤ {HARMFUL:g} adopted {'held' if all(e > HARMFUL for e in effects) else 'MISSED'}; under 10 "
          f"minutes {'held' if elapsed < 600 else 'MISSED'}")


def decision_days(conn, runs_per_day: int) -> list[tuple[float, tuple[int, int, int]]]:
    """Each canary decision's day (fractional, by run count), green for adopted, red for rolled back."""
    rows = conn.execute(
        "select v.decision, (select count(*) from training_runs r where r.started_at <= v.decided_at) "
        "from training_versions v where v.decision in ('adopted', 'rolled_back')").fetchall()
    colours = {"adopted": (44, 160, 44), "rolled_back": (214, 39, 40)}
    return [(runs / runs_per_day, colours[decision]) for decision, runs in rows]


if __name__ == "__main__":
    main()

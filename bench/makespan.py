"""Makespan of a batch against the fake OpenAI server, as a ratio to the ideal lower bound and
against a sequential baseline (a plain loop, one battle after another) in the same process.

    python -m bench.makespan            # the headline row and the full grid (about 3 minutes)
    python -m bench.makespan --quick    # the headline row only: 10 battles, 3 workers, no delay

A battle here is BATTLE_MAX_TURNS=1: closer, persona, referee = 3 calls, so L_battle = 3 × the
per-call latency.
"""
from __future__ import annotations

import argparse
import time

import psycopg

from bench.common import bench_database, fake_openai, ideal_makespan, reset, settings_for, table
from lib.app import make_llm
from lib.battle import BattleState, Models, closer_system_prompt, fight
from lib.llm import CallContext
from lib.runner import run_batch

CALLS_PER_BATTLE = 3


def timed_run(url, store, fake, battles, workers, delay_ms) -> tuple[float, dict]:
    reset(url)
    settings = settings_for(fake, TRAINING_BATCH_SIZE=battles, MAX_CONCURRENT_BATTLES=workers,
                            DELAY_BETWEEN_BATTLES_MS=delay_ms, BATTLE_MAX_TURNS=1, MAX_TOKENS_PER_TURN=64)
    started = time.monotonic()
    batch = run_batch(settings, store, make_llm(settings), trigger="manual")
    elapsed = time.monotonic() - started
    assert batch["battlesCompleted"] == battles, batch
    return elapsed, batch


def sequential_baseline(url: str, fake: str, battles: int) -> float:
    """What a hand-rolled script does: a for loop over the same personas, one battle at a time."""
    reset(url)
    with psycopg.connect(url) as conn:
        rows = conn.execute("select name, system_prompt, characteristics, attack_patterns from sandbox_personas "
                            "where is_active order by last_battled_at asc nulls first, name limit %s",
                            (battles,)).fetchall()
    personas = [dict(zip(("name", "system_prompt", "characteristics", "attack_patterns"), row)) for row in rows]
    settings = settings_for(fake, BATTLE_MAX_TURNS=1, MAX_TOKENS_PER_TURN=64)
    llm = make_llm(settings)
    models = Models(settings.closer_model, settings.persona_model, settings.referee_model, 1, 64)
    prompt = closer_system_prompt(settings.closer_prompt_path.read_text(), [])
    ctx = CallContext.for_cap(settings.kill_switch_usd, time.monotonic() + 600)
    started = time.monotonic()
    for i, persona in enumerate(personas):
        fight(llm, ctx, models, prompt, BattleState(str(i), persona))
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the headline row")
    args = parser.parse_args([] if argv is None and __name__ != "__main__" else argv)
    with bench_database() as (url, store):
        print("Headline: 10 battles, 3 workers, no start delay, fake at 200 ms per call")
        with fake_openai(0.2) as fake:
            # Warm-up, untimed: importing openai and its first call (~1.2 s) are a cold start, not makespan.
            timed_run(url, store, fake, 1, 1, 0)
            elapsed, _ = timed_run(url, store, fake, 10, 3, 0)
            baseline = sequential_baseline(url, fake, 10)
        bound = ideal_makespan(10, 3, 0, CALLS_PER_BATTLE * 0.2)
        print(table(["battles", "workers", "delay ms", "makespan s", "ideal s", "ratio", "sequential s", "speed-up"],
                    [[10, 3, 0, f"{elapsed:.2f}", f"{bound:.2f}", f"{elapsed / bound:.3f}", f"{baseline:.2f}",
                      f"{baseline / elapsed:.2f}x"]]))
        if args.quick:
            return
        print("\nGrid: fake at 100–500 ms per call (300 ms mean; each request's wait is fixed by its content, so "
              "the sequential baseline replays the same waits). L_battle for the ideal is the baseline's mean "
              "battle time over 10 battles.")
        headers = ["battles", "workers", "delay ms", "makespan s", "ideal s", "ratio", "sequential s", "speed-up"]
        widths = [7, 7, 8, 10, 7, 6, 12, 8]
        print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
        with fake_openai(0.3, jitter=0.2) as fake:
            timed_run(url, store, fake, 1, 1, 0)
            baselines = {b: sequential_baseline(url, fake, b) for b in (5, 10)}
            battle_s = baselines[10] / 10
            for battles in (5, 10, 50):
                for workers in (1, 3, 10):
                    for delay_ms in (0, 200):
                        elapsed, _ = timed_run(url, store, fake, battles, workers, delay_ms)
                        bound = ideal_makespan(battles, workers, delay_ms / 1000, battle_s)
                        base = baselines.get(battles)
                        row = [battles, workers, delay_ms, f"{elapsed:.2f}", f"{bound:.2f}", f"{elapsed / bound:.3f}",
                               f"{base:.2f}" if base else "-", f"{base / elapsed:.2f}x" if base else "-"]
                        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths)), flush=True)
        print(f"(L_battle = {battle_s:.3f}s. With equal battles, 10 on 3 workers cannot beat 10/ceil(10/3) = "
              "2.5x the sequential time; unequal ones let the pool do a little better.)")

if __name__ == "__main__":
    main()

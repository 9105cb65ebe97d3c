"""Makespan of a batch against the fake OpenAI server, as a ratio to a true lower bound, in cold
and warm processes, over repeated runs.

    python -m bench.makespan               # the grid, 3 repeats (about 10 minutes on 2 cores)
    python -m bench.makespan --quick       # one row: 10 battles, 3 workers, no delay
    python -m bench.makespan --repeats 5

The fake serves each request after a wait fixed by its content (100–500 ms, 300 ms mean), so a
battle's calls wait the same whoever makes them. A plain sequential loop over the same personas
(the baseline) is run first, and the fake's own log gives each battle's served waits Lᵢ (its
closer, seller and referee calls; BATTLE_MAX_TURNS=1). From them, for battles started in the
runner's order, at most C at once and D apart:

    bound  = max(ΣLᵢ/C, max Lᵢ, maxᵢ(i·D + Lᵢ))     no runner can finish sooner
    greedy = the in-order schedule with no overhead  what a perfect runner of this design does

Every repeat is a fresh process (`python -c`): its first batch is the cold one (importing the
SDK, the driver and lib, connecting; timed from before the imports), its second the warm one.
Each cell prints min–max (median) over the repeats. The check column compares the waits the fake
served to the runner with ΣLᵢ: the bound is computed from what was served.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import psycopg

from bench.common import (
    bench_database,
    fake_log,
    fake_openai,
    greedy_makespan,
    lower_bound,
    reset,
    settings_for,
    spread,
    table,
)
from lib.app import make_llm
from lib.battle import BattleSetup, BattleState, closer_system_prompt, fight
from lib.config import PROJECT_ROOT
from lib.llm import CallContext

GRID = [(5, 1, 0), (5, 3, 0), (5, 10, 200), (10, 1, 0), (10, 3, 0), (10, 3, 200), (10, 10, 0), (50, 3, 0),
        (50, 10, 0), (50, 10, 200)]
RESET_SQL = ("delete from training_runs; update sandbox_personas set last_battled_at = null, lease_run_id = null; "
             "update training_control set paused = false, reason = null")

# One repeat, in a fresh interpreter: a cold batch (timed from before lib's imports), then a warm one.
WORKER = r"""
import time
t0 = time.monotonic()
import json, sys
args = json.loads(sys.argv[1])
from lib.app import make_llm
from lib.config import Settings
from lib.runner import run_batch
from lib.store.psycopg import PsycopgStore
settings = Settings.from_env(args["env"])
llm = make_llm(settings)
llm.warm_up()  # as the train function and the CLI do
store = PsycopgStore(args["url"])
first = run_batch(settings, store, llm, trigger="manual")
cold = time.monotonic() - t0
import psycopg
with psycopg.connect(args["url"], autocommit=True) as conn:
    conn.execute(args["reset"])
t1 = time.monotonic()
second = run_batch(settings, store, make_llm(settings), trigger="manual")
warm = time.monotonic() - t1
store.close()
print(json.dumps({"cold": cold, "warm": warm, "completed": [first["battlesCompleted"], second["battlesCompleted"]]}))
"""


def bench_env(fake: str, battles: int, workers: int, delay_ms: int) -> dict:
    return {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": fake, "MAX_TRAINING_BATCH_SIZE": "100",
            "MAX_TRAINING_EXECUTION_TIME_MS": "600000", "KILL_SWITCH_THRESHOLD_USD": "100",
            "TRAINING_BATCH_SIZE": str(battles), "MAX_CONCURRENT_BATTLES": str(workers),
            "DELAY_BETWEEN_BATTLES_MS": str(delay_ms), "BATTLE_MAX_TURNS": "1", "MAX_TOKENS_PER_TURN": "64"}


def sequential_baseline(url: str, fake: str, battles: int) -> tuple[list[float], list[float]]:
    """A plain loop over the personas the runner will take, in its order: each battle's served waits
    (from the fake's log) and its wall time here."""
    reset(url)
    with psycopg.connect(url) as conn:
        rows = conn.execute("select name, system_prompt, characteristics, attack_patterns from sandbox_personas "
                            "where is_active order by last_battled_at asc nulls first, name limit %s",
                            (battles,)).fetchall()
    personas = [dict(zip(("name", "system_prompt", "characteristics", "attack_patterns"), row)) for row in rows]
    settings = settings_for(fake, BATTLE_MAX_TURNS=1, MAX_TOKENS_PER_TURN=64)
    llm = make_llm(settings)
    models = BattleSetup(settings.closer_model, settings.persona_model, settings.referee_model, 1, 64)
    prompt = closer_system_prompt(settings.closer_prompt_path.read_text(), [])
    ctx = CallContext.for_cap(settings.cost_cap_usd, time.monotonic() + 600)
    served, walls = [], []
    for i, persona in enumerate(personas):
        before = len(fake_log(fake))
        started = time.monotonic()
        fight(llm, ctx, models, prompt, BattleState(str(i), persona))
        walls.append(time.monotonic() - started)
        served.append(sum(entry["delay"] for entry in fake_log(fake, before)))
    return served, walls


def one_repeat(url: str, fake: str, battles: int, workers: int, delay_ms: int) -> dict:
    reset(url)
    before = len(fake_log(fake))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE", "SANDBOX", "OPENAI", "NEXT_PUBLIC"))}
    args = json.dumps({"env": bench_env(fake, battles, workers, delay_ms), "url": url, "reset": RESET_SQL})
    result = subprocess.run([sys.executable, "-c", WORKER, args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert row["completed"] == [battles, battles], row
    entries = fake_log(fake, before)
    row["served"] = sum(e["delay"] for e in entries[: len(entries) // 2])  # the cold batch's calls come first
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 10 battles, 3 workers, no delay")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args([] if argv is None and __name__ != "__main__" else argv)
    grid = [(10, 3, 0)] if args.quick else GRID
    most = max(battles for battles, _, _ in grid)
    headers = ["battles", "workers", "delay ms", "bound s", "greedy s", "warm s", "warm/bound", "cold s",
               "cold/bound", "sequential s", "speed-up (warm)", "check"]
    rows = []
    with bench_database() as (url, _), fake_openai(0.3, jitter=0.2) as fake:
        served, walls = sequential_baseline(url, fake, most)
        print(f"Fake at 100–500 ms per call (each request's wait fixed by its content), {args.repeats} repeats, "
              f"each a fresh process. Baseline: {most} battles one after another, {sum(walls):.1f}s "
              f"(served waits {sum(served):.1f}s).", flush=True)
        for battles, workers, delay_ms in grid:
            latencies = served[:battles]
            bound = lower_bound(latencies, workers, delay_ms / 1000)
            greedy = greedy_makespan(latencies, workers, delay_ms / 1000)
            repeats = [one_repeat(url, fake, battles, workers, delay_ms) for _ in range(args.repeats)]
            sequential = sum(walls[:battles])
            check = "ok" if all(abs(r["served"] - sum(latencies)) < 1e-6 for r in repeats) else "MISMATCH"
            rows.append([battles, workers, delay_ms, f"{bound:.2f}", f"{greedy:.2f}",
                         spread([r["warm"] for r in repeats]), spread([r["warm"] / bound for r in repeats], 3),
                         spread([r["cold"] for r in repeats]), spread([r["cold"] / bound for r in repeats], 3),
                         f"{sequential:.2f}", spread([sequential / r["warm"] for r in repeats]) + "x", check])
            print("  ".join(str(c) for c in rows[-1]), flush=True)
    print()
    print(table(headers, rows))
    print("\nServed waits Lᵢ per battle, in start order (s), to recompute the bounds: "
          + " ".join(f"{latency:.3f}" for latency in served))


if __name__ == "__main__":
    main()

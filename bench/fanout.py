"""Fan-out: 1, 2, 4 and 8 parallel runs started by one cron call, against a rate-limited provider.

    python -m bench.fanout              # about 5 minutes

For each N, `python -m lib serve` runs with CRON_FAN_OUT=N and MAX_CONCURRENT_RUNS=N, and one GET
to /api/cron/train (as Vercel Cron sends it) runs a batch and dispatches N−1 more to the same
server, as on Vercel. Each run has 2 battles in flight at most (1 turn: 3 calls of 400–600 ms).
The fake (its own process) enforces 1,200 requests a minute for the one model all roles use,
its bucket nearly used up at the start (5 %: the limit binds from the first seconds, as when
other work shares the key), so one run asks for about a fifth of the limit and 8 runs for more
than it. The runs pace themselves only from the fake's headers; they share nothing else but the
database.

After 45 s of battling, training is paused. Printed per N: battles per minute completed before
the pause, the provider's answered calls per minute and the 429 share, and the checks: no persona
in two battles at once, every battle accounted for (rows terminal, run tallies equal to the
rows), the day's spend within DAILY_BUDGET_USD, and the pause honoured (every run killed, and no
call started later than the pause poll plus one call after the pause).
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

import psycopg
import requests

from bench.common import bench_database, fake_log, fake_openai, reset, table
from lib.config import PROJECT_ROOT
from lib.pause_watch import PAUSE_POLL_S

RPM = 1200
WINDOW_S = 45.0
SECRET = "bench-fan-out"
BUDGET_USD = "40"
MAX_CALL_S = 0.6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(url: str, fake: str, runs: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE", "SANDBOX", "OPENAI", "NEXT_PUBLIC",
                                                                     "CRON", "SLACK", "VERCEL"))}
    env.update({"CRON_SECRET": SECRET, "USE_LOCAL_DB": "true", "LOCAL_DB_URL": url, "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": fake, "NEXT_PUBLIC_APP_URL": base, "CRON_FAN_OUT": str(runs),
                "MAX_CONCURRENT_RUNS": str(runs), "TRAINING_BATCH_SIZE": "100", "MAX_TRAINING_BATCH_SIZE": "100",
                "MAX_CONCURRENT_BATTLES": "2", "DELAY_BETWEEN_BATTLES_MS": "0", "BATTLE_MAX_TURNS": "1",
                "MAX_TOKENS_PER_TURN": "64", "MAX_TRAINING_EXECUTION_TIME_MS": "70000",
                "KILL_SWITCH_THRESHOLD_USD": "5", "DAILY_BUDGET_USD": BUDGET_USD, "CLOSER_MODEL": "gpt-4o-mini",
                "PERSONA_MODEL": "gpt-4o-mini", "REFEREE_MODEL": "gpt-4o-mini"})
    process = subprocess.Popen([sys.executable, "-m", "lib", "serve", "--port", str(port)], cwd=PROJECT_ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{base}/nowhere", timeout=1)
            return process, base
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)


def one(url: str, runs: int) -> list:
    reset(url)
    with psycopg.connect(url, autocommit=True) as db, fake_openai(0.5, jitter=0.1, rpm=RPM, tpm=10_000_000,
                                                                  start_level=0.05) as fake:
        db.execute("update training_control set budget_alerted_on = null")
        process, base = serve(url, fake, runs)
        try:
            cron = threading.Thread(target=lambda: requests.get(
                f"{base}/api/cron/train", headers={"Authorization": f"Bearer {SECRET}"}, timeout=120))
            cron.start()
            deadline = time.monotonic() + 30
            while db.execute("select count(distinct run_id) from sandbox_battles").fetchone()[0] < runs:
                assert time.monotonic() < deadline, "not every run started battling"
                time.sleep(0.05)
            first = time.monotonic()
            time.sleep(WINDOW_S)
            db.execute("select training_set_paused(true, 'bench: pause every run')")
            paused_at = time.monotonic()
            paused_db = db.execute("select updated_at from training_control").fetchone()[0]
            cron.join(120)
            deadline = time.monotonic() + 60
            while db.execute("select count(*) from training_runs where status = 'running'").fetchone()[0]:
                assert time.monotonic() < deadline, "runs still running after the pause"
                time.sleep(0.1)
        finally:
            process.terminate()
            process.wait(10)
        entries = fake_log(fake)
        completed = db.execute("select count(*) from sandbox_battles where status = 'completed' and ended_at <= %s",
                               (paused_db,)).fetchone()[0]
        overlapping = db.execute(
            "select count(*) from sandbox_battles a join sandbox_battles b on a.persona_id = b.persona_id "
            "and a.id < b.id and a.started_at < b.ended_at and b.started_at < a.ended_at").fetchone()[0]
        untallied = db.execute(
            "select count(*) from training_runs r where r.battles_started <> (select count(*) from sandbox_battles "
            "where run_id = r.id) or r.total_cost <> (select coalesce(sum(cost_usd), 0) from sandbox_battles "
            "where run_id = r.id)").fetchone()[0]
        running = db.execute("select count(*) from sandbox_battles where status = 'running'").fetchone()[0]
        statuses = [row[0] for row in db.execute("select status from training_runs").fetchall()]
        spend = db.execute("select coalesce(sum(cost_usd), 0) from sandbox_battles").fetchone()[0]
    window = [e for e in entries if first <= e["arrived"] < paused_at]
    answered = sum(1 for e in window if e.get("status") == 200) / ((paused_at - first) / 60)
    limited = sum(1 for e in entries if e.get("status") == 429)  # no status yet: still being answered
    late_entries = [e for e in entries if e["arrived"] > paused_at + PAUSE_POLL_S + MAX_CALL_S]
    late = len(late_entries)
    for e in late_entries:  # what came late, and how late: the pause's guarantee is about these
        print(f"  late call: {e['schema'] or 'text'} {e['arrived'] - paused_at:.2f} s after the pause, "
              f"status {e.get('status', 'still open')}", flush=True)
    accounted = "ok" if overlapping == 0 and untallied == 0 and running == 0 else \
        f"{overlapping} overlaps, {untallied} untallied, {running} running"
    pause = f"{statuses.count('killed')}/{len(statuses)} killed, {late} late calls"
    return [runs, len(statuses), f"{completed / ((paused_at - first) / 60):.0f}",
            f"{completed / ((paused_at - first) / 60) / runs:.0f}", f"{answered:.0f}", f"{100 * answered / RPM:.0f} %",
            f"{limited} of {len(entries)} ({100 * limited / len(entries):.1f} %)", accounted,
            f"${spend:.2f} of ${BUDGET_USD}", pause]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="*", default=[1, 2, 4, 8])
    args = parser.parse_args([] if argv is None and __name__ != "__main__" else argv)
    rows = []
    with bench_database(personas=900) as (url, _):
        for runs in args.runs:
            rows.append(one(url, runs))
            print("  ".join(str(c) for c in rows[-1]), flush=True)
    print(f"\nOne cron call, CRON_FAN_OUT=N, against {RPM:,} requests/min; battles/min over the {WINDOW_S:.0f} s "
          "before the pause")
    print(table(["N", "runs", "battles/min", "per run", "calls/min", "of the limit", "429s", "accounted",
                 "spend", "pause"], rows))


if __name__ == "__main__":
    main()

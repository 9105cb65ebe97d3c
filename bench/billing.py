"""What the provider billed against the caps and the budget, in the cases of issue 18.

    python -m bench.billing

The fake provider (in this process, on 127.0.0.1) bills every request it processed, whether or not
our client read the answer, and bills the most tokens each request allows. Each row starts from an
empty day and prints what the provider billed, what we recorded (usage read back), what we counted
as possibly billed (`billedUpTo`), the limit of the row, and the largest bill of one run against
its block where runs ran one at a time.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import psycopg

from bench.common import bench_database, table
from devtools.fakes.openai_server import FakeOpenAI
from devtools.harness import child_env, wait_until
from lib import scout
from lib.app import make_llm
from lib.config import PROJECT_ROOT, Settings
from lib.runner import RunRefused, run_batch
from lib.store.queries import Queries


def settings_for(fake: FakeOpenAI, **env) -> Settings:
    base = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": fake.base_url, "DELAY_BETWEEN_BATTLES_MS": "0",
            "MAX_CONCURRENT_RUNS": "8"}
    base.update({k: str(v) for k, v in env.items()})
    return Settings.from_env(base)


def env_for(url: str, fake: FakeOpenAI, **env) -> dict:
    return child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=url, OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=fake.base_url,
                     DELAY_BETWEEN_BATTLES_MS=0, MAX_CONCURRENT_RUNS=8, **env)


def empty_day(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("update sandbox_personas set last_battled_at = null, lease_run_id = null")
        conn.execute("delete from training_spends")
        conn.execute("delete from training_runs")  # their battles and re-scores go with them
        conn.execute("update training_control set paused = false, reason = null")


def settled(fake: FakeOpenAI) -> Decimal:
    wait_until(lambda: fake.in_flight == 0, 120, "the provider to finish every request")
    return fake.billed()


def sequential_runs(url, settings, store, fake, most: int) -> Decimal:
    """Runs one at a time until refused; returns the largest share of its block one run was billed."""
    worst = Decimal(0)
    for _ in range(most):
        start = len(fake.ledger)
        try:
            batch = run_batch(settings, store, make_llm(settings), trigger="cron")
        except RunRefused:
            break
        settled(fake)
        billed = sum((e["cost"] for e in fake.ledger[start:]), Decimal(0))
        with psycopg.connect(url) as conn:
            block = conn.execute("select budget_block from training_runs where id = %s",
                                 (batch["runId"],)).fetchone()[0]
        worst = max(worst, billed / block)
    return worst


def train(url, fake, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lib", "train", "--batch-size", str(env.pop("batch", 2))],
                            cwd=PROJECT_ROOT, env=env_for(url, fake, **env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def close_orphans(url: str, settings, store) -> None:
    """Waits out the orphans' deadlines, then lets the next run start close them."""
    with psycopg.connect(url, autocommit=True) as conn:
        wait_until(lambda: conn.execute("select coalesce(bool_and(deadline_at + interval '5 seconds' < now()), true) "
                                        "from training_runs where status = 'running'").fetchone()[0], 120,
                   "the orphans' deadlines")
    try:
        run_batch(settings, store, make_llm(settings), trigger="cron")
    except RunRefused:
        pass  # the refusal closed them too (training_start_run closes orphans first)


def figures(url: str, store, limit: Decimal) -> tuple[Decimal, Decimal]:
    day = Queries(store).budget_state(limit)["day"]
    return Decimal(str(day["spent"])), Decimal(str(day["billedUpTo"]))


def row(name: str, fake: FakeOpenAI, url: str, store, limit: Decimal, per_run: Decimal | None) -> list:
    billed = settled(fake)
    recorded, up_to = figures(url, store, limit)
    share = "-" if per_run is None else f"{per_run * 100:.0f} %"
    return [name, f"${billed:.4f}", f"${recorded:.4f}", f"${up_to:.4f}", f"${limit}",
            "yes" if billed <= limit else "NO", share]


def at_the_deadline(url, store) -> list:
    fake = FakeOpenAI(latency=1.2, usage="max").start()
    try:
        settings = settings_for(fake, TRAINING_BATCH_SIZE=3, BATTLE_MAX_TURNS=6, MAX_TOKENS_PER_TURN=4000,
                                MAX_TRAINING_EXECUTION_TIME_MS=2000, DAILY_BUDGET_USD="0.30",
                                KILL_SWITCH_THRESHOLD_USD="0.30")
        per_run = sequential_runs(url, settings, store, fake, most=8)
        return row("calls still running at the deadline (DAILY_BUDGET_USD=0.30)", fake, url, store,
                   Decimal("0.30"), per_run)
    finally:
        fake.stop()


def killed_every_run(url, store) -> list:
    fake = FakeOpenAI(latency=0.4, usage="max").start()
    try:
        # Calls small enough that a run's cap ($0.15) outlasts 1.8 s: the day's budget is what is at stake.
        budget = dict(DAILY_BUDGET_USD="0.30", KILL_SWITCH_THRESHOLD_USD="0.15", MAX_TOKENS_PER_TURN=1500,
                      BATTLE_MAX_TURNS=6)
        mid_call = 0
        for _ in range(6):
            process = train(url, fake, MAX_TRAINING_EXECUTION_TIME_MS=3000, **budget)
            started = time.monotonic()
            # The case: SIGKILL at 1.8 s in every run, here at the first moment from 1.8 s on
            # with a call in flight (a run refused by the spent day exits before).
            wait_until(lambda started=started, process=process: process.poll() is not None or (
                time.monotonic() - started >= 1.8 and fake.in_flight > 0), 30, "a call in flight from 1.8 s on")
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                mid_call += 1
            process.wait()
        close_orphans(url, settings_for(fake, TRAINING_BATCH_SIZE=2, **budget), store)
        return row(f"the process SIGKILLed mid-call from 1.8 s on in every run that started ({mid_call} of 6; "
                   "DAILY_BUDGET_USD=0.30)", fake, url, store, Decimal("0.30"), None)
    finally:
        fake.stop()


def killed_then_parallel(url, store) -> list:
    fake = FakeOpenAI(latency=0.15, usage="max").start()
    try:
        budget = dict(DAILY_BUDGET_USD="0.05", KILL_SWITCH_THRESHOLD_USD="0.02", MAX_TOKENS_PER_TURN=300,
                      BATTLE_MAX_TURNS=3)
        process = train(url, fake, MAX_TRAINING_EXECUTION_TIME_MS=2000, **budget)
        wait_until(lambda: len(fake.log) >= 3 and fake.in_flight > 0, 60, "calls in flight")
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        for process in [train(url, fake, batch=1, **budget) for _ in range(6)]:
            process.wait(120)
        close_orphans(url, settings_for(fake, TRAINING_BATCH_SIZE=1, **budget), store)
        return row("one SIGKILL, then 6 parallel runs (DAILY_BUDGET_USD=0.05)", fake, url, store,
                   Decimal("0.05"), None)
    finally:
        fake.stop()


def cut_off(url, store, mode: str) -> list:
    fake = FakeOpenAI(latency=0.02, usage="max").start()
    setattr(fake, mode, 2)
    try:
        settings = settings_for(fake, TRAINING_BATCH_SIZE=3, BATTLE_MAX_TURNS=4, MAX_TOKENS_PER_TURN=300,
                                KILL_SWITCH_THRESHOLD_USD="0.05")
        per_run = sequential_runs(url, settings, store, fake, most=1)
        what = ("connection dropped every 2nd call after processing" if mode == "drop_every"
                else "HTTP 502 every 2nd call after processing")
        return row(f"per-run cap $0.05, {what}", fake, url, store, Decimal("0.05"), per_run)
    finally:
        fake.stop()


def scans(url, store) -> list:
    fake = FakeOpenAI(latency=0.02, usage="max", referee_score=97).start()
    try:
        settings = settings_for(fake, TRAINING_BATCH_SIZE=10, BATTLE_MAX_TURNS=2, MAX_TOKENS_PER_TURN=300,
                                KILL_SWITCH_THRESHOLD_USD="0.05", DAILY_BUDGET_USD="0.10", REFEREE_AUDIT_SHARE="1")
        run_batch(settings, store, make_llm(settings), trigger="cron")
        # A run that reaches its cap pauses training, and a paused loop's scout sends nothing:
        # resumed, as a person would, so the scans below spend.
        Queries(store).set_paused(False)
        for _ in range(4):
            scout.scan(settings, store, make_llm(settings), deadline=time.monotonic() + 30)
        return row("a run, then scout scans (confirmations, audits; REFEREE_AUDIT_SHARE=1, DAILY_BUDGET_USD=0.10)",
                   fake, url, store, Decimal("0.10"), None)
    finally:
        fake.stop()


def main() -> None:
    rows = []
    with bench_database(personas=40) as (url, store):
        for case in (at_the_deadline, killed_every_run, killed_then_parallel,
                     lambda u, s: cut_off(u, s, "drop_every"), lambda u, s: cut_off(u, s, "gateway_error_every"),
                     scans):
            empty_day(url)
            rows.append(case(url, store))
            print(" | ".join(rows[-1]), flush=True)
    print("\nBilled by the provider against the caps and the daily budget (the fake bills the most tokens a "
          "request allows)")
    print(table(["case", "billed", "recorded", "counted (billedUpTo)", "limit", "billed ≤ limit",
                 "largest run bill / its block"], rows))


if __name__ == "__main__":
    main()

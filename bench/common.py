"""Shared set-up for the benchmarks: a real PostgreSQL (embedded, its own data dir), a migrated
database with enough personas, and the local fake OpenAI server."""
from __future__ import annotations

import math
import subprocess
import sys
from contextlib import contextmanager

import psycopg

from lib.config import Settings
from lib.personas import CATALOG, upsert_catalog
from lib.config import PROJECT_ROOT
from lib.store.embedded import EmbeddedPostgres
from lib.store.psycopg import PsycopgStore


@contextmanager
def bench_database(personas: int = 60):
    server = EmbeddedPostgres(PROJECT_ROOT / ".data" / "pg-bench").start()
    with psycopg.connect(server.admin_url(), autocommit=True) as conn:
        conn.execute('drop database if exists "bench" with (force)')
        conn.execute('create database "bench"')
    url = server.admin_url("bench")
    store = PsycopgStore(url)
    store.migrate()
    upsert_catalog(store, [{**CATALOG[i % len(CATALOG)], "name": f"Bench persona {i:03d}"}
                           for i in range(personas)])
    try:
        yield url, store
    finally:
        store.close()
        server.stop()


@contextmanager
def fake_openai(latency: float, jitter: float = 0.0):
    """The fake in its own process, as a real server would be: it does not compete for our GIL."""
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.openai_server", "--latency", str(latency),
                                "--jitter", str(jitter)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


def settings_for(base_url: str, **env) -> Settings:
    base = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": base_url, "MAX_TRAINING_BATCH_SIZE": "100",
            "MAX_TRAINING_EXECUTION_TIME_MS": "600000", "KILL_SWITCH_THRESHOLD_USD": "100",
            "MAX_CONCURRENT_RUNS": "1"}
    base.update({k: str(v) for k, v in env.items()})
    return Settings.from_env(base)


def reset(url: str) -> None:
    """Battles from earlier rows must not change the next row's admission or rotation."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from training_runs")
        conn.execute("update sandbox_personas set last_battled_at = null, lease_run_id = null")
        conn.execute("update training_control set paused = false, reason = null")


def ideal_makespan(battles: int, workers: int, delay_s: float, battle_s: float) -> float:
    """max(ceil(B/C)·L_battle, (B−1)·D + L_battle): no runner can beat this."""
    return max(math.ceil(battles / workers) * battle_s, (battles - 1) * delay_s + battle_s)


def table(headers: list[str], rows: list[list]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

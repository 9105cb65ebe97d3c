"""Faults, each asserting what was kept: rate-limit storms, a pause mid-run, PostgreSQL restarted
mid-run, the process killed with SIGKILL, and four runs in parallel processes."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from lib.app import make_llm
from lib.budget import price_for, usage_cost
from lib.config import PROJECT_ROOT
from lib.pause_watch import PAUSE_POLL_S
from lib.personas import upsert_catalog
from lib.runner import run_batch
from lib.store.embedded import EmbeddedPostgres
from lib.store.psycopg import PsycopgStore
from tests.conftest import (
    assert_every_battle_ended,
    batch_in_background,
    child_env,
    fresh_database,
    seed_personas,
    wait_until,
)


def test_a_429_storm_backs_off_and_keeps_every_battle(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 3)
    fake_openai.fail_next("429", count=8, retry_after=0.2)
    settings = make_settings(TRAINING_BATCH_SIZE=3, MAX_CONCURRENT_BATTLES=3)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert len(fake_openai.answered(429)) == 8
    assert batch["battlesStarted"] == 3
    assert batch["battlesCompleted"] + batch["battlesFailed"] == 3
    billed = sum(usage_cost(e["usage"]["prompt_tokens"], e["usage"]["prompt_tokens_details"]["cached_tokens"],
                            e["usage"]["completion_tokens"], price_for(e["model"], {}))
                 for e in fake_openai.answered())
    assert db.execute("select sum(cost_usd) from sandbox_battles").fetchone()[0] == billed
    assert_every_battle_ended(db)


def test_a_pause_stops_a_running_batch_within_a_call(make_settings, psycopg_store, db, fake_openai):
    fake_openai.latency = 0.2
    seed_personas(psycopg_store, 3)
    runner, result = batch_in_background(make_settings(TRAINING_BATCH_SIZE=3, BATTLE_MAX_TURNS=6), psycopg_store)
    wait_until(lambda: db.execute("select count(*) from sandbox_battles where turns >= 1").fetchone()[0] == 3,
               timeout=20, message="the three battles did not get going")
    db.execute("select training_set_paused(true, 'stop everything')")
    paused_at = time.monotonic()
    runner.join(10)
    assert result["status"] == "killed" and "Training paused mid-run: stop everything" in result["errors"]
    late = [e for e in fake_openai.log if e["arrived"] > paused_at + PAUSE_POLL_S + 0.25]
    assert late == [], "no call starts once the pause is seen"
    rows = db.execute("select status, turns, transcript from sandbox_battles").fetchall()
    assert {status for status, _, _ in rows} == {"killed"}
    assert all(len(transcript) >= 2 * turns for _, turns, transcript in rows)
    assert_every_battle_ended(db)


@pytest.fixture
def own_server():
    """A PostgreSQL of this test's own, so restarting it disturbs no other test."""
    path = PROJECT_ROOT / ".data" / "pg-restart-test"
    shutil.rmtree(path, ignore_errors=True)
    server = EmbeddedPostgres(path).start()
    yield server
    server.stop()
    shutil.rmtree(path, ignore_errors=True)


class RefusingListener:
    """Holds a stopped server's port, counting the connections that try it and closing each."""

    def __init__(self, port: int):
        self.attempts = 0
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self._socket.listen(64)
        self._thread = threading.Thread(target=self._refuse, daemon=True)

    def _refuse(self):
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.attempts += 1
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(5)


def test_postgres_restarted_mid_run_loses_no_battle(own_server, make_settings, fake_openai):
    url = fresh_database(own_server, "restart")
    store = PsycopgStore(url)
    store.migrate()
    from lib.personas import CATALOG

    upsert_catalog(store, CATALOG[:3])
    fake_openai.latency = 0.15
    runner, result = batch_in_background(make_settings(TRAINING_BATCH_SIZE=3, BATTLE_MAX_TURNS=4), store)
    with psycopg.connect(url, autocommit=True) as conn:
        wait_until(lambda: conn.execute("select count(*) from sandbox_battles where turns >= 1").fetchone()[0],
                   timeout=20, message="no battle got going")
    port = own_server.port
    own_server.stop()
    # Down until the run has tried to reach it a few times (each attempt is refused).
    with RefusingListener(port) as down:
        wait_until(lambda: down.attempts >= 3, timeout=20, message="the run never tried the database while down")
    restarted = EmbeddedPostgres(own_server.data_dir, port=port).start()
    runner.join(20)
    assert result["battlesStarted"] == 3 and result["battlesCompleted"] == 3, result
    with psycopg.connect(url) as conn:
        statuses = conn.execute("select status, count(*) from sandbox_battles group by status").fetchall()
        assert statuses == [("completed", 3)]
        assert conn.execute("select status from training_runs").fetchone()[0] == "completed"
    store.close()
    restarted.stop()
    own_server.started_here = False


def test_a_run_killed_with_sigkill_is_closed_by_the_next_run(make_settings, psycopg_store, db, fake_openai,
                                                            database_url):
    fake_openai.latency = 0.2
    seed_personas(psycopg_store, 4)
    env = child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=database_url, OPENAI_API_KEY="sk-test",
                    OPENAI_BASE_URL=fake_openai.base_url, MAX_TRAINING_EXECUTION_TIME_MS=4000,
                    BATTLE_MAX_TURNS=8, MAX_TOKENS_PER_TURN=64, DELAY_BETWEEN_BATTLES_MS=0)
    process = subprocess.Popen([sys.executable, "-m", "lib", "train", "--batch-size", "2"], cwd=PROJECT_ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: db.execute("select count(*) from sandbox_battles where turns >= 1").fetchone()[0] >= 1,
               timeout=20, message="the train process did not get a battle going")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    orphan_id, = db.execute("select id from training_runs where status = 'running'").fetchone()
    assert db.execute("select count(*) from sandbox_battles where status = 'running'").fetchone()[0] >= 1

    # The orphan is recognised once its deadline (4 s) and the grace (5 s) have passed.
    wait_until(lambda: db.execute("select deadline_at + interval '5 seconds' <= now() from training_runs "
                                  "where id = %s", (orphan_id,)).fetchone()[0], timeout=30)
    settings = make_settings(TRAINING_BATCH_SIZE=2, BATTLE_MAX_TURNS=1)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    assert batch["battlesCompleted"] == 2
    status, error, total = db.execute("select status, error, total_cost from training_runs where id = %s",
                                      (orphan_id,)).fetchone()
    assert status == "failed" and "process died" in error
    battles = db.execute("select status, turns, transcript, cost_usd from sandbox_battles where run_id = %s",
                         (orphan_id,)).fetchall()
    assert {row[0] for row in battles} == {"failed"}
    kept = [row for row in battles if row[1] >= 1]
    assert kept and all(len(row[2]) >= 2 and row[3] > 0 for row in kept), "paid-for turns are kept"
    assert total == sum(row[3] for row in battles)
    assert_every_battle_ended(db)


def parallel_trains(env: dict, count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-m", "lib", "train", "--batch-size", "3"], cwd=PROJECT_ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(count)]


@pytest.fixture
def scale_env(database_url, fake_openai):
    return child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=database_url, OPENAI_API_KEY="sk-test",
                     OPENAI_BASE_URL=fake_openai.base_url, MAX_CONCURRENT_RUNS=4, MAX_TOKENS_PER_TURN=64,
                     DELAY_BETWEEN_BATTLES_MS=0, KILL_SWITCH_THRESHOLD_USD="0.50")


def test_four_parallel_runs_share_no_persona_and_account_for_every_battle(scale_env, psycopg_store, db,
                                                                         fake_openai):
    fake_openai.latency = 0.15
    seed_personas(psycopg_store, 14)
    processes = parallel_trains({**scale_env, "BATTLE_MAX_TURNS": "4"}, 4)
    outputs = [p.communicate(timeout=60) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    runs = db.execute("select id, started_at, finished_at, battles_started, total_cost, cost_cap "
                      "from training_runs order by started_at").fetchall()
    assert len(runs) == 4
    for run_id, started_at, finished_at, *_ in runs:
        window = db.execute("select min(started_at), max(ended_at) from sandbox_battles where run_id = %s",
                            (run_id,)).fetchone()
        assert started_at <= window[0] and window[1] <= finished_at, "every battle inside its run"
    assert max(r[1] for r in runs) < min(r[2] for r in runs), "the four runs overlapped in time"
    personas = {run_id: {row[0] for row in db.execute(
        "select persona_id from sandbox_battles where run_id = %s", (run_id,)).fetchall()} for run_id, *_ in runs}
    all_ids = [pid for ids in personas.values() for pid in ids]
    assert len(all_ids) == len(set(all_ids)) == 12, "no persona in two runs at once"
    for run_id, _, _, started, total, cap in runs:
        assert db.execute("select count(*), coalesce(sum(cost_usd), 0) from sandbox_battles where run_id = %s",
                          (run_id,)).fetchone() == (started, total)
        assert total <= cap
    assert_every_battle_ended(db)


def test_a_pause_is_honoured_by_four_parallel_runs_within_a_call(scale_env, psycopg_store, db, fake_openai):
    fake_openai.latency = 0.2
    seed_personas(psycopg_store, 14)
    processes = parallel_trains({**scale_env, "BATTLE_MAX_TURNS": "10"}, 4)
    wait_until(lambda: db.execute("select count(distinct run_id) from sandbox_battles where turns >= 1"
                                  ).fetchone()[0] >= 4, timeout=30, message="the four runs did not start battling")
    db.execute("select training_set_paused(true, 'operator stop')")
    paused_at = time.monotonic()
    in_flight = db.execute("select count(*) from sandbox_battles where status = 'running'").fetchone()[0]
    for process in processes:
        process.communicate(timeout=30)
    late = [e for e in fake_openai.log if e["arrived"] > paused_at + PAUSE_POLL_S + 0.3]
    assert len(late) <= in_flight, f"{len(late)} calls started after the pause was visible ({in_flight} battles)"
    statuses = [row[0] for row in db.execute("select status from training_runs").fetchall()]
    assert statuses == ["killed"] * 4
    assert_every_battle_ended(db)

"""Ctrl-C or SIGTERM on `python -m lib train` finishes the run; a run whose process is gone is
named as such, and `python -m lib recover` closes it at once. Real processes, real signals."""
import signal
import subprocess
import sys

import pytest

from lib.config import PROJECT_ROOT
from tests.conftest import child_env, seed_personas, wait_until


def train(database_url: str, **env) -> subprocess.Popen:
    settings = {"USE_LOCAL_DB": "true", "LOCAL_DB_URL": database_url, "LLM_PROVIDER": "simulated",
                "DELAY_BETWEEN_BATTLES_MS": "3000", "MAX_CONCURRENT_BATTLES": "1", **env}
    return subprocess.Popen([sys.executable, "-m", "lib", "train", "--batch-size", "4"], cwd=PROJECT_ROOT,
                            env=child_env(**settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cli(database_url: str, *args) -> subprocess.CompletedProcess:
    env = child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=database_url, LLM_PROVIDER="simulated",
                    DELAY_BETWEEN_BATTLES_MS="0")
    return subprocess.run([sys.executable, "-m", "lib", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def wait_for_a_battle(db, process) -> None:
    wait_until(lambda: process.poll() is not None or db.execute(
        "select count(*) from sandbox_battles where status = 'running'").fetchone()[0] > 0,
        timeout=60, message="no battle started")
    assert process.poll() is None, process.communicate()


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_finishes_the_run_and_the_next_run_starts_at_once(psycopg_store, db, database_url, signum, code):
    seed_personas(psycopg_store, 4)
    process = train(database_url)
    wait_for_a_battle(db, process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == code, (out, err)
    status, errors, finished = db.execute("select status, errors, finished_at from training_runs").fetchone()
    assert status == "killed" and finished is not None
    assert f"Interrupted ({signal.Signals(signum).name})" in errors[-1]
    assert db.execute("select count(*) from sandbox_battles where status = 'running'").fetchone()[0] == 0
    assert db.execute("select count(*) from sandbox_battles where status = 'killed'").fetchone()[0] >= 1, "cut"
    assert "status         killed" in out
    assert db.execute("select count(*) from sandbox_personas where lease_run_id is not null").fetchone()[0] == 0
    again = cli(database_url, "train", "--batch-size", "1")
    assert again.returncode == 0, again.stderr


def test_a_run_whose_process_is_gone_is_named_and_recover_closes_it(psycopg_store, db, database_url):
    seed_personas(psycopg_store, 4)
    process = train(database_url)
    wait_for_a_battle(db, process)
    process.kill()  # no chance to finish: the run stays `running`
    process.communicate(timeout=30)
    refused = cli(database_url, "train", "--batch-size", "1")
    deadline = db.execute("select to_char((deadline_at + interval '5 seconds') at time zone 'UTC', 'HH24:MI:SS') "
                          "from training_runs").fetchone()[0]
    assert refused.returncode == 1
    assert refused.stderr.endswith(f"(the previous run's process stopped; it will be closed at {deadline} UTC, or "
                                   "now with python -m lib recover)\n"), refused.stderr
    recovered = cli(database_url, "recover")
    assert recovered.stdout == "closed 1 run (1 whose process is gone)\n", recovered.stderr
    status, error = db.execute("select status, error from training_runs").fetchone()
    assert (status, error) == ("failed", "the process died before the run finished; closed by python -m lib recover")
    assert cli(database_url, "train", "--batch-size", "1").returncode == 0


def test_recover_leaves_a_run_whose_process_is_alive(psycopg_store, db, database_url):
    seed_personas(psycopg_store, 4)
    process = train(database_url)
    try:
        wait_for_a_battle(db, process)
        recovered = cli(database_url, "recover")
        assert recovered.stdout.startswith("closed 0 runs (0 whose process is gone)\n  still running: ")
        assert db.execute("select status from training_runs").fetchone()[0] == "running"
    finally:
        process.kill()
        process.communicate(timeout=30)

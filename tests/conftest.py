"""Fixtures: a real PostgreSQL (the embedded server, its own data dir), a migrated test
database, and the store over both transports."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import responses

from devtools.fakes.postgrest import FakePostgrest
from devtools.harness import child_env as child_env
from devtools.harness import wait_until as wait_until
from lib.config import PROJECT_ROOT
from lib.store.embedded import EmbeddedPostgres
from lib.store.postgrest import PostgrestStore
from lib.store.psycopg import PsycopgStore

# The dashboard's browser fixtures (Chromium, the served dashboard, a page), for the dashboard tests.
pytest_plugins = ["tests.dashboard_page"]

TEST_DATABASE = "training_test"
TABLES = ("training_runs, sandbox_personas, sandbox_battles, sandbox_tactics, training_rescores, "
          "training_referee_calibrations, training_referee_drift_alerts, training_versions, training_proposals, training_spends")


@pytest.fixture(scope="session")
def pg_server():
    # One server per pytest-xdist worker (gw0, gw1, …): each its own data directory and port.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = Path(os.environ.get("TEST_PG_DIR", PROJECT_ROOT / ".data" / "pg-test"))
    server = EmbeddedPostgres(base.with_name(f"{base.name}-{worker}") if worker else base).start()
    yield server
    server.stop()


def fresh_database(server: EmbeddedPostgres, name: str) -> str:
    with psycopg.connect(server.admin_url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    return server.admin_url(name)


@pytest.fixture(scope="session")
def database_url(pg_server):
    url = fresh_database(pg_server, TEST_DATABASE)
    store = PsycopgStore(url)
    store.migrate()
    store.close()
    return url


@pytest.fixture
def db(database_url):
    """A direct connection to the test database, emptied before the test."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"truncate {TABLES} restart identity cascade")
        conn.execute("update training_control set paused = false, reason = null, paused_by = null, "
                     "budget_alerted_on = null, proposer_turn_at = null")
        yield conn


@pytest.fixture
def fake_postgrest(db, database_url):
    fake = FakePostgrest(database_url)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        fake.install(mock)
        yield fake


@pytest.fixture(params=["psycopg", "postgrest"])
def store(request, db, database_url):
    """The same contract, over each transport."""
    if request.param == "psycopg":
        store = PsycopgStore(database_url)
    else:
        fake = request.getfixturevalue("fake_postgrest")
        store = PostgrestStore(f"{fake.base_url}/rest/v1", fake.key)
    yield store
    store.close()


@pytest.fixture
def fake_openai():
    from devtools.fakes.openai_server import FakeOpenAI

    fake = FakeOpenAI(latency=0.02).start()
    yield fake
    fake.stop()


@pytest.fixture
def psycopg_store(db, database_url):
    store = PsycopgStore(database_url)
    yield store
    store.close()


@pytest.fixture
def make_settings(fake_openai):
    """Settings for a run against the fake OpenAI server; keyword arguments override the env."""
    from lib.config import Settings

    def make(**env):
        base = {"OPENAI_API_KEY": "sk-test-key", "OPENAI_BASE_URL": fake_openai.base_url,
                "DELAY_BETWEEN_BATTLES_MS": "0", "BATTLE_MAX_TURNS": "2", "MAX_TOKENS_PER_TURN": "64",
                "MAX_TRAINING_EXECUTION_TIME_MS": "20000"}
        base.update({k: str(v) for k, v in env.items()})
        return Settings.from_env(base)

    return make


def seed_personas(store, count: int) -> list[str]:
    from lib.personas import CATALOG, upsert_catalog

    upsert_catalog(store, CATALOG[:count])
    return [p["name"] for p in CATALOG[:count]]


# A timing guarantee is checked on what the system recorded (its durations, the rows' times), with
# this much added for a loaded 2-core machine, where a ready thread may wait for a core. How fast
# things are is measured in bench/, not asserted here.
LOAD_MARGIN_MS = 1500


class Background:
    """A function on a thread; `join` waits for it and re-raises whatever it raised."""

    def __init__(self, target):
        import threading

        self.error: BaseException | None = None
        self._target = target
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            self._target()
        except BaseException as exc:  # re-raised in the test's thread by join()
            self.error = exc

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"still running after {timeout} s")
        if self.error is not None:
            raise self.error


def batch_in_background(settings, store, trigger: str = "cron") -> tuple:
    """Starts `run_batch` on a thread; the dict fills with the batch when it returns, and the
    returned `Background`'s `join` re-raises what `run_batch` raised."""
    from lib.app import make_llm
    from lib.runner import run_batch

    result: dict = {}
    runner = Background(lambda: result.update(run_batch(settings, store, make_llm(settings), trigger=trigger)))
    return runner, result


def assert_every_battle_ended(db) -> None:
    running = db.execute("select count(*) from sandbox_battles where status = 'running'").fetchone()[0]
    assert running == 0, f"{running} battles left running"
    assert db.execute("select count(*) from training_runs where status = 'running'").fetchone()[0] == 0


# ---- the functions over real HTTP: `python -m lib serve` in a child process ----

SECRET = "test-cron-secret-4b1d"
BYPASS = "bypass-secret-77aa"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = child_env(**{k: str(v).replace("{self}", self.url) for k, v in env.items() if v is not None})
        self.process = subprocess.Popen([sys.executable, "-m", "lib", "serve", "--port", str(self.port)],
                                        cwd=PROJECT_ROOT, env=full_env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        banner = self.process.stdout.readline()
        assert banner.startswith("serving on"), banner

    def stop(self) -> str:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=10)
        return out

@pytest.fixture
def slack():
    from devtools.fakes.receiver import Receiver

    receiver = Receiver()
    yield receiver
    receiver.stop()

@pytest.fixture
def base_env(database_url, fake_openai, slack):
    return {"CRON_SECRET": SECRET, "USE_LOCAL_DB": "true", "LOCAL_DB_URL": database_url,
            "OPENAI_API_KEY": "sk-test-key-9f9f", "OPENAI_BASE_URL": fake_openai.base_url,
            "SLACK_WEBHOOK_URL": slack.url + "/services/T0/B0/slacksecret", "NEXT_PUBLIC_APP_URL": "{self}",
            "DELAY_BETWEEN_BATTLES_MS": "0", "BATTLE_MAX_TURNS": "2", "MAX_TOKENS_PER_TURN": "64",
            "MAX_TRAINING_EXECUTION_TIME_MS": "20000"}

@pytest.fixture
def start_server(base_env, db):
    servers = []

    def start(**overrides):
        server = Server({**base_env, **overrides})
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


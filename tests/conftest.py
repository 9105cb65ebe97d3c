"""Fixtures: a real PostgreSQL (the embedded server, its own data dir), a migrated test
database, and the store over both transports."""
from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
import responses

from lib.store.embedded import PROJECT_ROOT, EmbeddedPostgres
from lib.store.postgrest import PostgrestStore
from lib.store.psycopg import PsycopgStore
from tests.fakes.postgrest import FakePostgrest

TEST_DATABASE = "training_test"
TABLES = "training_runs, sandbox_personas, sandbox_battles, sandbox_tactics"


@pytest.fixture(scope="session")
def pg_server():
    server = EmbeddedPostgres(Path(os.environ.get("TEST_PG_DIR", PROJECT_ROOT / ".data" / "pg-test"))).start()
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
        conn.execute(f"truncate {TABLES} cascade")
        conn.execute("update training_control set paused = false, reason = null")
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
    from tests.fakes.openai_server import FakeOpenAI

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


def assert_every_battle_ended(db) -> None:
    running = db.execute("select count(*) from sandbox_battles where status = 'running'").fetchone()[0]
    assert running == 0, f"{running} battles left running"
    assert db.execute("select count(*) from training_runs where status = 'running'").fetchone()[0] == 0

"""Data for the dashboard's bench and screenshots: a fresh embedded database, a history of simulated
runs spread over past days, and many battles seeded in one statement."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from contextlib import contextmanager

import psycopg

from lib.app import make_llm
from lib.config import PROJECT_ROOT, Settings
from lib.personas import CATALOG, upsert_catalog
from lib.store import Rejected
from lib.store.embedded import EmbeddedPostgres
from lib.store.psycopg import PsycopgStore
from lib.store.queries import Queries, ReviewStatus
from lib.training import train_once


@contextmanager
def dashboard_database(name: str):
    """A fresh, migrated database `name` on an embedded server of its own (.data/pg-dashboard)."""
    server = EmbeddedPostgres(PROJECT_ROOT / ".data" / "pg-dashboard").start()
    try:
        with psycopg.connect(server.admin_url(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'create database "{name}"')
        url = server.admin_url(name)
        store = PsycopgStore(url)
        store.migrate()
        upsert_catalog(store, CATALOG)
        store.close()
        yield url
    finally:
        server.stop()


def simulated_settings(url: str, **env) -> Settings:
    base = {"USE_LOCAL_DB": "true", "LOCAL_DB_URL": url, "LLM_PROVIDER": "simulated",
            "DELAY_BETWEEN_BATTLES_MS": "0", "BATTLE_MAX_TURNS": "10", "TRAINING_BATCH_SIZE": "5",
            "MAX_TRAINING_EXECUTION_TIME_MS": "120000", "KILL_SWITCH_THRESHOLD_USD": "0.25"}
    base.update({k: str(v) for k, v in env.items()})
    return Settings.from_env(base)


def simulate_history(url: str, runs: int = 20, days: float = 6.5, killed_at: int | None = 13) -> None:
    """`runs` simulated batches of 5 battles and a scout scan, then spread over the last `days` so
    the charts have a time axis to show; run `killed_at` trips its cost cap. About 1 battle in 5
    becomes a breakthrough; a few are then promoted, reviewed or rejected, as a reviewer would."""

    store = PsycopgStore(url)
    queries = Queries(store)
    settings = simulated_settings(url)
    llm = make_llm(settings, latency_scale=0.02)
    for index in range(runs):
        run_settings = settings
        if index == killed_at:
            run_settings = dataclasses.replace(settings, cost_cap_usd=settings.cost_cap_usd / 20)
        # The run, the canary's look and a scout scan here (at most 5 new breakthroughs a run).
        train_once(run_settings, store, llm, trigger="cron", scout="in_process")
        queries.set_paused(False)
        if index in PROMOTE_AFTER_RUNS:  # a reviewer promotes a tactic: the next runs are its canary
            _decide(queries, _oldest_pending(url, 1), ("promote",))
    with psycopg.connect(url, autocommit=True) as conn:
        # Run i of n starts `days` × (n − i) / n ago; its battles move with it.
        conn.execute("""
            with ordered as (
                select id, row_number() over (order by started_at) as i, count(*) over () as n from training_runs
            ), shift as (
                select id, (now() - make_interval(secs => %s * 86400 * (n - i + 0.35) / n)) - r.started_at as by
                from ordered join training_runs r using (id)
            ), runs as (
                update training_runs r set started_at = r.started_at + s.by, finished_at = r.finished_at + s.by,
                    deadline_at = r.deadline_at + s.by
                from shift s where s.id = r.id returning r.id, s.by
            )
            update sandbox_battles b set started_at = b.started_at + runs.by, ended_at = b.ended_at + runs.by,
                updated_at = b.updated_at + runs.by,
                breakthrough_detected_at = b.breakthrough_detected_at + runs.by
            from runs where b.run_id = runs.id""", (days,))
        conn.execute("update sandbox_personas p set last_battled_at = (select max(started_at) from sandbox_battles b "
                     "where b.persona_id = p.id)")
        decided = [row[0] for row in conn.execute(
            "select id::text from sandbox_battles where breakthrough_status = 'pending_review' "
            "order by breakthrough_detected_at limit 4")]
    _decide(queries, decided, ("promote", ReviewStatus.REVIEWED, ReviewStatus.REJECTED, "promote"))
    store.close()


# After these runs a breakthrough is promoted, so the page has versions and a canary to show.
PROMOTE_AFTER_RUNS = (1, 3, 5, 8)


def _oldest_pending(url: str, count: int) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [row[0] for row in conn.execute(
            "select id::text from sandbox_battles where breakthrough_status = 'pending_review' "
            "order by breakthrough_detected_at limit %s", (count,))]


def _decide(queries, battle_ids: list[str], decisions: tuple) -> None:
    """A reviewer's decisions; a promotion while another tactic is under canary waits (refused)."""
    for battle_id, decision in zip(battle_ids, decisions):
        if decision != "promote":
            queries.set_review_status(battle_id, decision)
            continue
        try:
            queries.promote_breakthrough(battle_id)
        except Rejected:
            queries.set_review_status(battle_id, ReviewStatus.REVIEWED)


def serve(url: str, password: str, port: int):
    """`python -m lib serve` on that database, as the dashboard's users run it."""
    env = {"PATH": "/usr/bin:/bin", "USE_LOCAL_DB": "true", "LOCAL_DB_URL": url, "ADMIN_PASSWORD": password}
    process = subprocess.Popen([sys.executable, "-m", "lib", "serve", "--port", str(port)], cwd=PROJECT_ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    banner = process.stdout.readline()
    if not banner.startswith("serving on"):
        process.kill()
        raise RuntimeError(f"serve did not start: {banner}")
    return process

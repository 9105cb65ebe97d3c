"""Upgrading in place: a database of the previous release, holding data, takes today's schema.

`tests/upgrade/schema-f6740ef.sql` is `lib/sql/schema.sql` as released at commit f6740ef (the
release before the `training_` prefix). Keep this test for every schema change: when a release
ships, add its file beside it and upgrade from that one too.
"""
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from lib.personas import CATALOG
from lib.store.psycopg import PsycopgStore
from lib.store.queries import BattleRecord, BattleStatus, Queries, RunStatus, Trigger
from tests.conftest import fresh_database

RELEASES = sorted((Path(__file__).parent / "upgrade").glob("schema-*.sql"))
TABLES = ("training_control", "training_runs", "sandbox_personas", "sandbox_battles", "sandbox_tactics")


def seed_with_first_release(conn) -> None:
    """Runs, battles, a breakthrough with its moment and a promoted tactic, through that release's
    own functions."""
    conn.execute("select * from upsert_personas(%s)", (Jsonb(CATALOG[:3]),))
    started = conn.execute("select start_training_run('cron', null, 3, 5, 1, 50000, true, 15000)").fetchone()[0]
    run_id = started["run"]["batchId"]
    for index, persona in enumerate(started["personas"]):
        battle_id = conn.execute("select start_battle(%s, %s)", (run_id, persona["id"])).fetchone()[0]
        transcript = Jsonb([{"speaker": "closer", "text": "Hello"}, {"speaker": "persona", "text": "Hi"}])
        conn.execute("select finish_battle(%s, 'completed', %s, 1, 100, 0, 50, 0.001234, %s, %s, 'ok', 'line', %s)",
                     (battle_id, transcript, 97 - index * 20, Jsonb({"rapport": 90}), index == 0))
    conn.execute("select finish_training_run(%s, 'completed', 'failed', false, false, '[]', 95, 1234)", (run_id,))
    work = conn.execute("select claim_scout_work(95, 20, 120)").fetchone()[0]
    assert len(work) == 1
    conn.execute("select record_defining_moment(%s, 'We put it in writing.', 'Put the offer in writing.')",
                 (work[0]["id"],))
    conn.execute("select mark_alerted(%s)", (work[0]["id"],))
    conn.execute("select promote_breakthrough(%s)", (work[0]["id"],))
    conn.execute("select set_training_paused(true, 'before the upgrade')")


def snapshot(conn) -> dict:
    return {table: conn.execute(f"select coalesce(jsonb_agg(to_jsonb(t) order by to_jsonb(t)::text), '[]') "
                                f"from {table} t").fetchone()[0] for table in TABLES}


@pytest.mark.parametrize("release", RELEASES, ids=lambda path: path.stem)
def test_upgrade_keeps_every_row_and_every_function_works(pg_server, release):
    url = fresh_database(pg_server, "schema_upgrade_test")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(release.read_text())
        seed_with_first_release(conn)
        before = snapshot(conn)
        store = PsycopgStore(url)
        store.migrate()
        store.migrate()  # and again: applying today's file twice is still safe
        after = snapshot(conn)
        for table in TABLES:
            assert len(after[table]) == len(before[table]), table
            for old, new in zip(before[table], after[table]):
                assert {key: new.get(key) for key in old} == old, f"{table} row changed by the upgrade"

        leftovers = conn.execute(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where n.nspname = 'public' and p.proname not like 'training\\_%'").fetchall()
        assert leftovers == [], f"functions of the old release left behind: {leftovers}"
        overloads = conn.execute(
            "select proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where n.nspname = 'public' group by proname having count(*) > 1").fetchall()
        assert overloads == [], f"ambiguous overloads: {overloads}"

        queries = Queries(store)
        assert queries.status()["pendingBreakthroughs"] == 0  # the one breakthrough was promoted
        assert queries.pause_state()["reason"] == "before the upgrade"
        assert [t["tactic_text"] for t in queries.active_tactics()] == ["Put the offer in writing."]
        assert len(queries.feed()["battles"]) == 3
        assert len(queries.run_history()) == 1
        assert queries.breakthroughs()["items"][0]["status"] == "promoted"
        assert {p["name"] for p in queries.persona_analytics()} == {p["name"] for p in CATALOG[:3]}
        assert queries.upsert_personas(CATALOG[:3])[0]["action"] == "unchanged"

        # The old release's run (no block of its own) counts against today's and this month's budget.
        budget = queries.status(Decimal("1"), Decimal("30"))["budget"]
        assert Decimal(str(budget["day"]["spent"])) == Decimal(str(budget["month"]["spent"])) == Decimal("0.003702")
        queries.set_paused(False)
        started = queries.start_run(trigger=Trigger.CLI, requested_batch_size=None, batch_size=1, cost_cap=5,
                                    max_concurrent_runs=1, deadline_ms=50_000, simulated=True,
                                    default_battle_ms=15_000, daily_budget=Decimal("1"))
        assert started["status"] == "started" and started["expectedBattleMs"] > 0
        assert Decimal(str(started["budget"]["block"])) == Decimal("1") - Decimal("0.003702")
        run_id = started["run"]["batchId"]
        battle_id = queries.start_battle(run_id, started["personas"][0]["id"])
        record = BattleRecord([], 0, 0, 0, 0, 0)
        assert queries.record_battle_progress(battle_id, record)
        assert queries.finish_battle(battle_id, BattleStatus.FAILED, record, None, "test")
        summary = queries.finish_run(run_id, status=RunStatus.COMPLETED, leftover_status=BattleStatus.FAILED,
                                     cost_cap_tripped=False, timed_out=False, errors=[], breakthrough_threshold=95,
                                     duration_ms=10, error=None, pause_reason=None)
        assert summary["battlesFailed"] == 1
        assert queries.flag_breakthroughs(95) == []
        assert queries.lease_scout_work(20, 120) == []
        store.close()

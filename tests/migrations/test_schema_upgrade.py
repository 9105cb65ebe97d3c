"""Upgrading in place: a database of the first release, holding data, takes today's schema.

`tests/migrations/upgrade/schema-f6740ef.sql` is `lib/sql/schema.sql` as released at commit f6740ef (the
release before the `training_` prefix); these are its row checks. tests/migrations/test_migrations.py
upgrades from every release (the second: tests/migrations/upgrade/schema-e40f24c.sql) and compares the
result with a fresh install.
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

FIRST_RELEASE = Path(__file__).parent / "upgrade" / "schema-f6740ef.sql"
RELEASES = [FIRST_RELEASE]
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
    # Each battle took 2 s (started and finished a fraction of a millisecond apart here): the new
    # release's runs then expect a simulated battle to take that long.
    conn.execute("update sandbox_battles set started_at = ended_at - interval '2 seconds'")
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
        store.migrate()  # and again: migrating twice is still safe
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

        # Closer versions: the upgrade made a baseline with the tactics active until then, and every
        # battle from before belongs to it.
        baseline, = conn.execute("select id from training_versions").fetchone()
        listing = Queries(store).versions(100)
        assert [(v["id"], v["status"], v["battles"], v["decision"]) for v in listing["versions"]] == [
            (baseline, "active", 3, None)]
        assert listing["versions"][0]["change"].startswith("Baseline") and listing["canary"] is None
        assert conn.execute("select count(*) from sandbox_battles where version_id = %s", (baseline,)
                            ).fetchone()[0] == 3
        assert conn.execute("select count(*) from sandbox_battles where version_id is null").fetchone()[0] == 0

        queries = Queries(store)
        assert queries.status()["pendingBreakthroughs"] == 0  # the one breakthrough was promoted
        assert queries.pause_state()["reason"] == "before the upgrade"
        assert [t["tactic_text"] for t in queries.active_tactics()] == ["Put the offer in writing."]
        assert len(queries.feed()["battles"]) == 3
        assert len(queries.dashboard_runs(24 * 30)["runs"]) == 1
        assert queries.breakthroughs()["items"][0]["status"] == "promoted"
        assert {p["name"] for p in queries.persona_analytics()} == {p["name"] for p in CATALOG[:3]}
        health = queries.dashboard_health()
        assert health["lastRun"]["battles"] == 3 and health["week"]["battles"] == 3 and health["paused"] is True
        assert [run["battles"] for run in queries.dashboard_runs(24)["runs"]] == [3]
        indexes = {row[0] for row in conn.execute("select indexname from pg_indexes where tablename = 'sandbox_battles'")}
        assert {"sandbox_battles_updated_idx", "sandbox_battles_started_idx"} <= indexes
        assert "sandbox_battles_feed_idx" not in indexes, "the first release's feed index, which no query could use"
        assert queries.upsert_personas(CATALOG[:3])[0]["action"] == "unchanged"

        # The old release's run (no block of its own) counts against today's and this month's budget.
        budget = queries.status(Decimal("1"), Decimal("30"))["budget"]
        assert Decimal(str(budget["day"]["spent"])) == Decimal(str(budget["month"]["spent"])) == Decimal("0.003702")
        queries.set_paused(False)
        started = queries.start_run(trigger=Trigger.CLI, requested_batch_size=None, batch_size=1, cost_cap=Decimal(5),
                                    max_concurrent_runs=1, deadline_ms=50_000, simulated=True,
                                    default_battle_ms=15_000, daily_budget=Decimal("1"))
        assert started["status"] == "started" and started["expectedBattleMs"] == 2000
        assert Decimal(str(started["budget"]["block"])) == Decimal("1") - Decimal("0.003702")
        run_id = started["run"]["batchId"]
        battle_id = queries.start_battle(run_id, started["personas"][0]["id"])
        assert conn.execute("select version_id from sandbox_battles where id = %s", (battle_id,)).fetchone() == (
            baseline,)
        record = BattleRecord([], 0, 0, 0, 0, Decimal("0.000000123456"))
        assert queries.record_battle_progress(battle_id, record)
        assert queries.finish_battle(battle_id, BattleStatus.FAILED, record, None, "test")
        summary = queries.finish_run(run_id, status=RunStatus.COMPLETED, leftover_status=BattleStatus.FAILED,
                                     cost_cap_reached=False, timed_out=False, errors=[], breakthrough_threshold=95,
                                     duration_ms=10, error=None, pause_reason=None)
        assert summary["battlesFailed"] == 1
        # The breakthrough flagged before confirmation existed stays one ('legacy'), its alert sent;
        # triage then sees the other completed battles once, and a candidate awaits confirmation.
        rows = conn.execute("select referee_score, breakthrough_status, confirm_status, slack_status, scout_seen_at "
                            "is not null from sandbox_battles where status = 'completed' order by referee_score desc"
                            ).fetchall()
        assert rows[0][1:] == ("promoted", "legacy", "sent", True)
        assert all(row[1:] == (None, None, None, False) for row in rows[1:])
        conn.execute("update sandbox_battles set referee_score = 96 where referee_score = 77")
        assert queries.triage_battles(95, Decimal(0), 7) == {"triaged": 2, "candidates": 1, "audits": 0}
        assert queries.triage_battles(95, Decimal(1), 7)["triaged"] == 0, "once each"
        lease = queries.lease_scout_work(20, 120, slack=True, max_attempts=5)
        assert lease["due"] == 1 and [item["confirmStatus"] for item in lease["items"]] == ["pending"]
        assert queries.lease_scout_work(20, 120, slack=True, max_attempts=5)["items"] == [], "leased"
        assert queries.referee_report(95, 7, 30, 5)["precision"]["decisions"] == 1
        # Recorded cost is kept at full precision once upgraded (the old columns held 6 decimals).
        assert conn.execute("select cost_usd from sandbox_battles where id = %s", (battle_id,)).fetchone()[0] == \
            Decimal("0.000000123456")
        assert conn.execute("select total_cost from training_runs where id = %s", (run_id,)).fetchone()[0] == \
            Decimal("0.000000123456")
        types = dict(conn.execute(
            "select table_name || '.' || column_name, format_type(atttypid, atttypmod) from information_schema.columns "
            "join pg_attribute on attrelid = (table_name::regclass) and attname = column_name "
            "where column_name in ('cost_usd', 'total_cost', 'cost_cap')").fetchall())
        assert types == {"sandbox_battles.cost_usd": "numeric(20,12)", "training_runs.total_cost": "numeric(20,12)",
                         "training_runs.cost_cap": "numeric(12,6)", "training_rescores.cost_usd": "numeric(20,12)",
                         "training_referee_calibrations.cost_usd": "numeric(20,12)",
                         "training_proposals.cost_usd": "numeric(20,12)"}
        assert tactic_limit_validated(conn) is True, "no tactic over the limit: the check covers every row"
        store.close()


def tactic_limit_validated(conn) -> bool:
    return conn.execute("select convalidated from pg_constraint where conrelid = 'sandbox_tactics'::regclass "
                        "and conname = 'sandbox_tactics_active_text_at_most_1000_chars'").fetchone()[0]


@pytest.mark.parametrize("release", RELEASES, ids=lambda path: path.stem)
def test_an_older_tactic_over_the_limit_survives_the_upgrade_and_can_be_retired(pg_server, release):
    url = fresh_database(pg_server, "schema_upgrade_tactic_test")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(release.read_text())
        conn.execute("insert into sandbox_tactics (tactic_text) values (%s)", ("x" * 61_000,))
        store = PsycopgStore(url)
        store.migrate()
        assert conn.execute("select length(tactic_text), is_active from sandbox_tactics").fetchone() == (61_000, True)
        assert tactic_limit_validated(conn) is False, "added NOT VALID: the upgrade did not fail on the old row"
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("insert into sandbox_tactics (tactic_text) values (%s)", ("y" * 1001,))
        conn.execute("update sandbox_tactics set is_active = false")  # retiring the old one is allowed
        store.migrate()
        assert tactic_limit_validated(conn) is True, "validated once no active tactic is over the limit"
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("update sandbox_tactics set is_active = true")
        store.close()

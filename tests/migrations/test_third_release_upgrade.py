"""The third release (commit 1344cff, migrations 0001–0012) upgrades in place: a database holding its
canary (paired battles, a head-to-head verdict, a recorded look), a proposal and a budget spend,
written through that release's own functions, gets only the migrations made since, keeps every
row, and the functions of today work on it. upgrade/schema-1344cff.sql is that release's
`python -m lib migrate --print`."""
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from lib.personas import CATALOG
from lib.store.proposal_queries import ProposalQueries
from lib.store.psycopg import PsycopgStore
from lib.store.queries import Queries
from tests.conftest import fresh_database
from tests.migrations.test_migrations import (  # noqa: F401 (fresh_catalog, service_role: the fixtures)
    ALL_MIGRATIONS,
    assert_same_catalog,
    catalog,
    fresh_catalog,
    migrate,
    recorded,
    rows,
    service_role,
)

THIRD_RELEASE = Path(__file__).parent / "upgrade" / "schema-1344cff.sql"
SINCE_THIRD_RELEASE = ("0013_canary_unit_and_verdict_records",)
COLUMNS_SINCE_THIRD_RELEASE = {"sandbox_battles": ("pair_verdict_candidate_first", "pair_verdict_failures",
                                                   "pair_verdict_claimed_until"),
                               "training_versions": ("canary_unit",)}


def battle(conn, run_id: str, planned: dict, score: int) -> str:
    battle_id = conn.execute("select training_start_battle(%s, %s, %s, %s::smallint)",
                             (run_id, planned["persona"]["id"], planned["versionId"], planned["pairOrder"])
                             ).fetchone()[0]
    conn.execute("select training_finish_battle(%s, 'completed', %s, 1, 100, 0, 50, 0.0001, %s, %s)",
                 (battle_id, Jsonb([{"speaker": "closer", "text": "Hello"}]), score, Jsonb({"rapport": score})))
    return battle_id


def run(conn, batch_size: int) -> dict:
    started = conn.execute(
        "select training_start_run(p_trigger => 'cli', p_requested_batch_size => null, p_batch_size => %s, "
        "p_cost_cap => 5, p_max_concurrent_runs => 1, p_deadline_ms => 50000, p_simulated => true, "
        "p_default_battle_ms => 15000, p_base_prompt => 'You are the closer.', p_daily_budget => 10)",
        (batch_size,)).fetchone()[0]
    assert started["status"] == "started", started
    return started


def seed_with_third_release(conn) -> None:
    conn.execute("select * from training_upsert_personas(%s)", (Jsonb(CATALOG[:4]),))
    first = run(conn, 2)
    [breakthrough, _] = [battle(conn, first["run"]["runId"], planned, score)
                         for planned, score in zip(first["battles"], (97, 80), strict=True)]
    conn.execute("select training_finish_run(%s, 'completed', 'failed', false, false, '[]', 95, 1234)",
                 (first["run"]["runId"],))
    assert conn.execute("select training_triage_battles(95, 0, 7)").fetchone()[0]["candidates"] == 1
    conn.execute("select training_record_confirmation(%s, 'm', 96, %s, 0.001, true, 'held')",
                 (breakthrough, Jsonb({"rapport": 95})))
    conn.execute("select training_record_defining_moment(%s, 'In writing.', 'Put the offer in writing.')",
                 (breakthrough,))
    conn.execute("select training_mark_alerted(%s)", (breakthrough,))
    promoted = conn.execute("select training_promote_breakthrough(%s)", (breakthrough,)).fetchone()[0]
    assert promoted["version"]["status"] == "candidate", promoted
    # A canary run: two pairs, one judged head to head, and the look that recorded them.
    second = run(conn, 4)
    assert second["canaryPairs"] == 2, second
    for planned in second["battles"]:
        battle(conn, second["run"]["runId"], planned, 84 if planned["versionId"] == 2 else 80)
    conn.execute("select training_finish_run(%s, 'completed', 'failed', false, false, '[]', 95, 1234)",
                 (second["run"]["runId"],))
    judged = conn.execute("select id from sandbox_battles where version_id = 2 order by id limit 1").fetchone()[0]
    assert conn.execute("select training_record_pair_verdict(%s, 1)", (judged,)).fetchone()[0] is True
    conn.execute("select training_record_canary(2, 'pending', 2, 4, -90, 95, 100)")
    conn.execute("select training_propose('add', 'Name the repair costs.', null, 'person', 'cli')")
    spend = conn.execute("select training_take_budget('scout', 0.5, 10, null, 30000, true)").fetchone()[0]
    conn.execute("select training_close_spend(%s, 0.01, 0.01)", (spend["id"],))
    conn.execute("select training_set_paused(true, 'before the upgrade')")


def test_third_release_upgrades_in_place_with_its_canary_proposals_and_spends(pg_server, fresh_catalog):  # noqa: F811
    url = fresh_database(pg_server, "migrations_third_release")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(THIRD_RELEASE.read_text())
        seed_with_third_release(conn)
        before = rows(conn)
    result = migrate(url)
    assert (result.installed, result.applied) == (False, SINCE_THIRD_RELEASE), "only the migrations made since"
    assert recorded(url) == ALL_MIGRATIONS
    assert_same_catalog(catalog(url), fresh_catalog)
    with psycopg.connect(url, autocommit=True) as conn:
        after = rows(conn)
        for table, columns in COLUMNS_SINCE_THIRD_RELEASE.items():
            for row in after[table]:
                assert all(row.pop(column) is None for column in columns), (table, row)
        assert after == before, "the upgrade changed rows"
        overloads = conn.execute("select proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                                 "where n.nspname = 'public' group by proname having count(*) > 1").fetchall()
        assert overloads == [], f"ambiguous overloads: {overloads}"

    store = PsycopgStore(url)
    try:
        queries = Queries(store)
        canary = queries.versions(100)["canary"]
        assert (canary["candidateId"], canary["pairs"], canary["unit"]) == (2, 2, "score")
        assert canary["positionBias"] is None, "a verdict from before its order was kept"
        assert queries.canary_pairs("score")["diffs"] == [4, 4]
        verdicts = queries.canary_pairs("head_to_head")
        assert verdicts["diffs"] == [100] and verdicts["skipped"] == 1
        [unjudged] = queries.canary_unjudged(5, claim_s=30)
        assert queries.release_pair(unjudged["candidateBattleId"], failed=True) == 1
        # The pause, read by today's budget call: the loop's calls are refused, a person's are not.
        assert queries.take_budget("scout", Decimal("0.5"), Decimal(10), None, 30_000, True,
                                   refuse_when_paused=True)["status"] == "paused"
        assert queries.take_budget("personas", Decimal("0.5"), Decimal(10), None, 30_000, True)["status"] == "granted"
        recorded_look = queries.record_canary(2, "pending", 2, 4.0, [-90.0, 95.0], 100, unit="score")
        assert recorded_look["recorded"] is True
        assert [p["text"] for p in ProposalQueries(store).listing()["queue"]] == ["Name the repair costs."]
    finally:
        store.close()

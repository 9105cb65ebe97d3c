"""The store contract, run over psycopg and over PostgREST against the same real SQL."""
import psycopg
import pytest

from lib.personas import CATALOG, upsert_catalog
from lib.store import SCHEMA_HINT, Rejected, SchemaMissing, Store, StoreError
from lib.store.psycopg import PsycopgStore
from lib.store.queries import Queries
from tests.conftest import fresh_database


def test_catalog_upsert_is_idempotent_and_counts_one_row_per_persona(store: Store, db):
    first = upsert_catalog(store)
    second = upsert_catalog(store)
    assert {r["action"] for r in first} == {"inserted"}
    assert {r["action"] for r in second} == {"unchanged"}
    assert db.execute("select count(*) from sandbox_personas").fetchone()[0] == len(CATALOG)


def test_edited_catalog_entry_updates_its_row_and_manual_personas_are_left_alone(store: Store, db):
    upsert_catalog(store)
    db.execute("""insert into sandbox_personas (name, persona_type, system_prompt)
                  values ('Hand-made Hannah', 'custom', 'You are Hannah.')""")
    edited = [dict(p) for p in CATALOG]
    edited[0] = {**edited[0], "description": "Now even more suspicious."}
    results = upsert_catalog(store, edited)
    assert [r["action"] for r in results].count("updated") == 1
    assert db.execute("select description from sandbox_personas where name = %s",
                      (edited[0]["name"],)).fetchone()[0] == "Now even more suspicious."
    assert db.execute("select system_prompt from sandbox_personas where name = 'Hand-made Hannah'"
                      ).fetchone()[0] == "You are Hannah."


def test_jsonb_arguments_arrive_as_json(store: Store, db):
    upsert_catalog(store, [{**CATALOG[0], "characteristics": {"difficulty": 5, "nested": [1, "two"]}}])
    row = db.execute("select characteristics, attack_patterns from sandbox_personas").fetchone()
    assert row[0] == {"difficulty": 5, "nested": [1, "two"]}
    assert row[1] == CATALOG[0]["attack_patterns"]


def test_bad_persona_rejects_the_whole_call(store: Store, db):
    with pytest.raises(Rejected) as err:
        upsert_catalog(store, [CATALOG[0], {**CATALOG[1], "system_prompt": " "}])
    assert "has no system_prompt" in err.value.message
    assert err.value.code == "P0001"
    assert db.execute("select count(*) from sandbox_personas").fetchone()[0] == 0


def test_check_constraint_is_a_rejection(store: Store, db):
    with pytest.raises(Rejected) as err:
        upsert_catalog(store, [{**CATALOG[0], "characteristics": ["not", "an", "object"]}])
    assert err.value.code == "23514"


def test_pause_and_resume_round_trip_through_status(store: Store):
    paused = Queries(store).set_paused(True, "budget review")
    assert paused["paused"] is True and paused["reason"] == "budget review"
    assert Queries(store).status()["paused"] is True
    Queries(store).set_paused(False)
    status = Queries(store).status()
    assert status["paused"] is False and status["reason"] is None


def test_pause_without_reason_is_refused_with_the_database_message(store: Store):
    with pytest.raises(Rejected, match="a pause needs a reason"):
        Queries(store).set_paused(True, "")


def test_missing_function_says_to_apply_the_schema(store: Store):
    with pytest.raises(SchemaMissing) as err:
        store.call_one("training_no_such_function")
    assert "schema not applied: run python -m lib migrate" in str(err.value)
    assert "Supabase SQL editor" in str(err.value)


def test_a_result_without_its_typed_keys_names_the_function_and_the_fix(pg_server):
    """A database whose functions are older than the code fails where the result arrives, not at a
    KeyError somewhere later."""
    url = fresh_database(pg_server, "older_functions_test")
    store = PsycopgStore(url)
    try:
        store.migrate()
        with psycopg.connect(url, autocommit=True) as conn:  # the answer of a release without pausedBy
            conn.execute("create or replace function training_pause_state() returns jsonb language sql "
                         "as $$ select jsonb_build_object('paused', false) $$")
        with pytest.raises(StoreError) as err:
            Queries(store).pause_state()
    finally:
        store.close()
    assert str(err.value) == ("training_pause_state answered without pausedBy, reason, updatedAt where a "
                              "PauseState was expected")
    assert err.value.hint == SCHEMA_HINT


def test_a_missing_operator_is_a_database_error_not_a_missing_schema(store: Store, db):
    # SQLSTATE 42883 also means "operator does not exist": a bug to report as it is, not a schema to apply.
    db.execute("create or replace function training_test_operator_error() returns boolean language plpgsql "
               "as $$ begin return 'a'::text = 1; end $$")
    try:
        with pytest.raises(StoreError) as err:
            store.call_one("training_test_operator_error")
    finally:
        db.execute("drop function training_test_operator_error()")
    assert not isinstance(err.value, SchemaMissing)
    assert err.value.code == "42883" and "operator does not exist: text = integer" in str(err.value)


def test_the_limit_on_an_active_tactic_is_enforced_in_sql_too(store: Store, db):
    upsert_catalog(store, CATALOG[:1])
    run_id = db.execute("insert into training_runs (trigger, batch_size, cost_cap, deadline_at) "
                        "values ('cron', 1, 5, now() + interval '1 minute') returning id").fetchone()[0]
    persona_id = db.execute("select id from sandbox_personas").fetchone()[0]
    battle_id = db.execute("insert into sandbox_battles (run_id, persona_id, breakthrough_status, tactical_snippet) "
                           "values (%s, %s, 'pending_review', 'Name the costs.') returning id::text",
                           (run_id, persona_id)).fetchone()[0]
    with pytest.raises(Rejected, match="a tactic is at most 1000 characters"):
        Queries(store).promote_breakthrough(battle_id, "x" * 1001)
    assert db.execute("select count(*) from sandbox_tactics").fetchone()[0] == 0
    Queries(store).promote_breakthrough(battle_id, "x" * 1000)
    assert db.execute("select tactic_text from sandbox_tactics").fetchone()[0] == "x" * 1000


def test_status_shape_is_the_same_on_both_transports(store: Store):
    upsert_catalog(store)
    status = Queries(store).status()
    assert status["personas"] == {"active": len(CATALOG), "total": len(CATALOG)}
    assert status["battles"] == {}
    assert status["totalCost"] == 0
    assert isinstance(status["updatedAt"], str)


def test_function_names_must_be_identifiers(store: Store):
    with pytest.raises(ValueError):
        store.call_one("training_status(); drop table sandbox_personas; --")


def test_calls_from_many_threads_share_the_store(store: Store, db):
    from concurrent.futures import ThreadPoolExecutor

    upsert_catalog(store)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: Queries(store).status(), range(40)))
    assert all(r["personas"]["total"] == len(CATALOG) for r in results)


def test_feed_cursor_returns_only_new_or_changed_battles(store: Store, db):
    upsert_catalog(store, CATALOG[:1])
    run_id = db.execute("insert into training_runs (trigger, batch_size, cost_cap, deadline_at) "
                        "values ('cron', 1, 5, now() + interval '1 minute') returning id").fetchone()[0]
    persona_id = db.execute("select id from sandbox_personas").fetchone()[0]
    battle_id = db.execute("insert into sandbox_battles (run_id, persona_id) values (%s, %s) returning id",
                           (run_id, persona_id)).fetchone()[0]
    first = Queries(store).feed()
    assert [b["id"] for b in first["battles"]] == [str(battle_id)] and first["battles"][0]["status"] == "running"
    cursor = first["cursor"]
    again = Queries(store).feed(cursor["updatedAt"], cursor["id"])
    assert again["battles"] == [] and again["cursor"] is None
    db.execute("update sandbox_battles set status = 'failed', ended_at = now(), updated_at = now()")
    changed = Queries(store).feed(cursor["updatedAt"], cursor["id"])
    assert [b["status"] for b in changed["battles"]] == ["failed"]


def test_promotion_is_refused_twice_and_for_non_breakthroughs(store: Store, db):
    upsert_catalog(store, CATALOG[:1])
    run_id = db.execute("insert into training_runs (trigger, batch_size, cost_cap, deadline_at) "
                        "values ('cron', 1, 5, now() + interval '1 minute') returning id").fetchone()[0]
    persona_id = db.execute("select id from sandbox_personas").fetchone()[0]
    plain, flagged = (db.execute(
        "insert into sandbox_battles (run_id, persona_id, breakthrough_status, tactical_snippet) "
        "values (%s, %s, %s, %s) returning id::text", (run_id, persona_id, status, snippet)).fetchone()[0]
        for status, snippet in ((None, None), ("pending_review", "Name the repair costs.")))
    with pytest.raises(Rejected, match="is not a breakthrough"):
        Queries(store).promote_breakthrough(plain)
    promoted = Queries(store).promote_breakthrough(flagged)
    # A promotion makes a candidate version (v2, on the baseline v1); the tactic is active once adopted.
    assert promoted["message"] == "candidate v2 created, canary started against v1"
    assert promoted["tactic"]["tactic_text"] == "Name the repair costs." and promoted["tactic"]["is_active"] is False
    assert (promoted["version"]["status"], promoted["version"]["decision"]) == ("candidate", "pending")
    with pytest.raises(Rejected, match="already promoted"):
        Queries(store).promote_breakthrough(flagged)
    assert Queries(store).active_tactics() == []

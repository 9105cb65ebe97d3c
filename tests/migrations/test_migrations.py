"""The schema's layout (lib/store/migrations.py): a database built by the migrations equals one
built by lib/sql/schema.sql, each release's database upgrades to the same shape with its rows
kept, two migrates at once apply each step once, and `migrate --print` / `--supabase` build the
same database as `python -m lib migrate`.

When a release ships, save its lib/sql/schema.sql and functions beside tests/migrations/upgrade/schema-*.sql
and upgrade from it here too.
"""
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from lib.config import PROJECT_ROOT
from lib.personas import CATALOG
from lib.store.migrations import LOCK_KEY, migrations, print_sql, supabase_files
from lib.store.psycopg import PsycopgStore
from lib.store.queries import Queries, Trigger
from tests.conftest import child_env, fresh_database, wait_until
from tests.migrations.test_schema_upgrade import FIRST_RELEASE, seed_with_first_release, snapshot

UPGRADE = Path(__file__).parent / "upgrade"
SECOND_RELEASE = UPGRADE / "schema-e40f24c.sql"
ALL_MIGRATIONS = [m.name for m in migrations()]

# Every catalog fact of the public schema a migration could get wrong, as comparable rows.
CATALOG_QUERIES = {
    "tables": """
        select c.relname, c.relkind, c.relrowsecurity, obj_description(c.oid, 'pg_class'), c.relacl::text
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'S', 'v', 'm') order by 1""",
    "columns": """
        select c.relname, row_number() over (partition by c.oid order by a.attnum), a.attname,
               format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
               pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum), a.attacl::text
        from pg_attribute a join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where n.nspname = 'public' and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped order by 1, 2""",
    "constraints": """
        select conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid), convalidated
        from pg_constraint where connamespace = 'public'::regnamespace order by 1, 2""",
    "indexes": "select tablename, indexname, indexdef from pg_indexes where schemaname = 'public' order by 1, 2",
    "functions": """
        select p.proname, pg_get_function_identity_arguments(p.oid), md5(pg_get_functiondef(p.oid)),
               p.proacl::text, obj_description(p.oid, 'pg_proc')
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public' order by 1, 2""",
    "triggers": "select tgrelid::regclass::text, tgname from pg_trigger where not tgisinternal order by 1, 2",
}


def catalog(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in CATALOG_QUERIES.items()}


def assert_same_catalog(got: dict, expected: dict) -> None:
    for name in CATALOG_QUERIES:
        missing = [row for row in expected[name] if row not in got[name]]
        extra = [row for row in got[name] if row not in expected[name]]
        assert (missing, extra) == ([], []), f"{name} differ: missing {missing[:5]}, extra {extra[:5]}"


def recorded(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("select name from training_schema_migrations order by name")]


def migrate(url: str):
    store = PsycopgStore(url)
    try:
        return store.migrate()
    finally:
        store.close()


def execute_script(url: str, sql: str) -> None:
    """As psql or the Supabase SQL editor runs a pasted script: one execution of the whole text."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="module")
def service_role(pg_server):
    """Supabase's role, so the grants are part of what is compared."""
    with psycopg.connect(pg_server.admin_url(), autocommit=True) as conn:
        conn.execute("do $$ begin create role service_role; exception when duplicate_object then null; end $$")


@pytest.fixture(scope="module")
def fresh_catalog(pg_server, service_role):
    url = fresh_database(pg_server, "migrations_fresh")
    result = migrate(url)
    assert result.installed and list(result.applied) == ALL_MIGRATIONS
    assert recorded(url) == ALL_MIGRATIONS
    return catalog(url)


def test_the_migrations_from_empty_build_what_schema_sql_builds(pg_server, fresh_catalog):
    url = fresh_database(pg_server, "migrations_from_empty")
    execute_script(url, print_sql())  # on an empty database: every migration from 0001, then the functions
    assert recorded(url) == ALL_MIGRATIONS
    assert_same_catalog(catalog(url), fresh_catalog)
    assert migrate(url).lines()[0] == "up to date: no migration pending"
    assert_same_catalog(catalog(url), fresh_catalog)


def test_the_comparison_sees_a_difference(pg_server, fresh_catalog):
    """The equality above could not pass by comparing nothing."""
    url = fresh_database(pg_server, "migrations_differs")
    migrate(url)
    execute_script(url, "alter table sandbox_battles alter column error set default 'x'")
    with pytest.raises(AssertionError, match="columns differ"):
        assert_same_catalog(catalog(url), fresh_catalog)


def seed_with_second_release(conn) -> None:
    """A run with a confirmed, promoted breakthrough (a candidate version), a pause, a calibration:
    through the second release's own functions."""
    conn.execute("select * from training_upsert_personas(%s)", (Jsonb(CATALOG[:3]),))
    started = conn.execute(
        "select training_start_run(p_trigger => 'cli', p_requested_batch_size => null, p_batch_size => 3, "
        "p_cost_cap => 5, p_max_concurrent_runs => 1, p_deadline_ms => 50000, p_simulated => true, "
        "p_default_battle_ms => 15000, p_base_prompt => 'You are the closer.', p_daily_budget => 10)").fetchone()[0]
    assert started["status"] == "started", started
    run_id = started["run"]["batchId"]
    for index, battle in enumerate(started["battles"]):
        battle_id = conn.execute("select training_start_battle(%s, %s, %s)",
                                 (run_id, battle["persona"]["id"], battle["versionId"])).fetchone()[0]
        conn.execute("select training_finish_battle(%s, 'completed', %s, 1, 100, 0, 50, 0.000123456789, %s, %s)",
                     (battle_id, Jsonb([{"speaker": "closer", "text": "Hello"}]), 97 - index * 20,
                      Jsonb({"rapport": 90})))
    conn.execute("select training_finish_run(%s, 'completed', 'failed', false, false, '[]', 95, 1234)", (run_id,))
    assert conn.execute("select training_triage_battles(95, 0, 7)").fetchone()[0]["candidates"] == 1
    battle_id = conn.execute("select id from sandbox_battles where confirm_status = 'pending'").fetchone()[0]
    conn.execute("select training_record_confirmation(%s, 'm', 96, %s, 0.001, true, 'held')",
                 (battle_id, Jsonb({"rapport": 95})))
    conn.execute("select training_record_defining_moment(%s, 'In writing.', 'Put the offer in writing.')", (battle_id,))
    conn.execute("select training_mark_alerted(%s)", (battle_id,))
    promoted = conn.execute("select training_promote_breakthrough(%s)", (battle_id,)).fetchone()[0]
    assert promoted["version"]["status"] == "candidate", promoted
    conn.execute("select training_record_calibration('m', true, 0.9, 0.8, 10, 0.01, '{}')")
    conn.execute("select training_set_paused(true, 'before the upgrade')")


def test_second_release_upgrades_in_place_with_every_row_and_function(pg_server, fresh_catalog):
    url = fresh_database(pg_server, "migrations_second_release")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SECOND_RELEASE.read_text())
        seed_with_second_release(conn)
        before = rows(conn)
    result = migrate(url)
    assert (result.installed, result.applied) == (False, SINCE_SECOND_RELEASE), "only the migrations made since"
    assert recorded(url) == ALL_MIGRATIONS
    assert_same_catalog(catalog(url), fresh_catalog)
    assert migrate(url).lines()[0] == "up to date: no migration pending"
    assert_same_catalog(catalog(url), fresh_catalog)
    with psycopg.connect(url, autocommit=True) as conn:
        assert without_new_columns(rows(conn)) == before, "the upgrade changed rows"
    store = PsycopgStore(url)
    queries = Queries(store)
    listing = queries.versions(100)
    assert [v["status"] for v in listing["versions"]] == ["candidate", "active"]
    assert queries.pause_state()["reason"] == "before the upgrade"
    assert queries.breakthroughs()["items"][0]["status"] == "promoted"
    assert queries.referee_report(95, 7, 30, 5) is not None
    queries.set_paused(False)
    started = queries.start_run(trigger=Trigger.CLI, requested_batch_size=None, batch_size=2, cost_cap=Decimal(5),
                                max_concurrent_runs=1, deadline_ms=50_000, simulated=True,
                                default_battle_ms=15_000, daily_budget=Decimal("10"))
    assert started["status"] == "started" and started["canaryPairs"] >= 1
    store.close()


# Migrations made after the second release, and the columns they add (null on older rows).
SINCE_SECOND_RELEASE = ("0007_canary_pairs", "0008_withdrawn_versions_and_run_process", "0009_proposal_queue",
                        "0010_money_held_against_the_bill", "0011_canary_look_id",
                        "0012_canary_pair_verdict", "0013_canary_unit_and_verdict_records")
COLUMNS_SINCE_SECOND_RELEASE = {"sandbox_battles": ("pair_order", "pair_verdict", "pair_verdict_candidate_first",
                                                    "pair_verdict_failures", "pair_verdict_claimed_until"), "training_runs": ("process", "committed_cost"),
                                "training_control": ("proposer_turn_at",), "training_versions": ("decided_by_look", "canary_unit")}
# Tables made after the second release: empty after the upgrade.
TABLES_SINCE_SECOND_RELEASE = ("training_proposals", "training_spends")


def without_new_columns(tables: dict) -> dict:
    """The rows as the second release held them: each column added since must be null, and goes;
    each table made since must be empty, and goes."""
    for table, columns in COLUMNS_SINCE_SECOND_RELEASE.items():
        for row in tables[table]:
            assert all(row.pop(column) is None for column in columns), (table, row)
    for table in TABLES_SINCE_SECOND_RELEASE:
        assert tables.pop(table) == [], table
    return tables


def rows(conn) -> dict:
    tables = [row[0] for row in conn.execute(
        "select tablename from pg_tables where schemaname = 'public' and tablename <> 'training_schema_migrations'")]
    return {table: snapshot_table(conn, table) for table in sorted(tables)}


def snapshot_table(conn, table: str) -> list:
    return conn.execute(f"select coalesce(jsonb_agg(to_jsonb(t) order by to_jsonb(t)::text), '[]') "
                        f"from {table} t").fetchone()[0]


def test_first_release_upgrades_to_the_fresh_shape_and_a_second_migrate_changes_nothing(pg_server, fresh_catalog):
    url = fresh_database(pg_server, "migrations_first_release")
    execute_script(url, FIRST_RELEASE.read_text())
    with psycopg.connect(url, autocommit=True) as conn:
        seed_with_first_release(conn)
        before = snapshot(conn)
    result = migrate(url)
    assert (result.installed, list(result.applied)) == (False, ALL_MIGRATIONS[1:])
    assert result.lines()[:len(ALL_MIGRATIONS) - 1] == [f"applied {name}" for name in ALL_MIGRATIONS[1:]]
    assert_same_catalog(catalog(url), fresh_catalog)
    with psycopg.connect(url, autocommit=True) as conn:
        after = rows(conn)
        assert migrate(url).lines()[0] == "up to date: no migration pending"
        assert rows(conn) == after, "a second migrate changed rows"
        assert len(snapshot(conn)["sandbox_battles"]) == len(before["sandbox_battles"])
    assert_same_catalog(catalog(url), fresh_catalog)


def test_a_database_from_between_the_releases_upgrades_to_the_fresh_shape(pg_server, fresh_catalog):
    """A commit between the releases had the second release's tables but not its budget columns
    (the classification's marker): it is taken for the first release, and 0003-0006 replay over it."""
    url = fresh_database(pg_server, "migrations_between_releases")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SECOND_RELEASE.read_text())
        seed_with_second_release(conn)
        conn.execute("alter table training_runs drop column budget_block")
        conn.execute("alter table training_control drop column budget_alerted_on")
        before = rows(conn)
    result = migrate(url)
    assert list(result.applied) == ALL_MIGRATIONS[1:]
    assert_same_catalog(catalog(url), fresh_catalog)
    with psycopg.connect(url, autocommit=True) as conn:
        after = without_new_columns(rows(conn))
        for row in after["training_runs"]:
            assert row.pop("budget_block") is None
        for row in after["training_control"]:
            assert row.pop("budget_alerted_on") is None
        assert after == before, "the upgrade changed rows"


@pytest.mark.parametrize("release", ["first_release", "second_release"])
def test_an_older_completed_battle_without_a_score_is_marked_failed_and_the_scout_still_triages(pg_server, release):
    """PostgreSQL checks even a NOT VALID constraint on every update of a row: left completed and
    unscored, such a battle would fail every scout triage (one update of all unseen battles)."""
    url = fresh_database(pg_server, f"migrations_unscored_{release}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((FIRST_RELEASE if release == "first_release" else SECOND_RELEASE).read_text())
        (seed_with_first_release if release == "first_release" else seed_with_second_release)(conn)
        unscored = conn.execute("update sandbox_battles set referee_score = null where id = (select id from "
                                "sandbox_battles where status = 'completed' and breakthrough_status is null "
                                "order by referee_score limit 1) returning id").fetchone()[0]
        if release == "second_release":  # unseen, as the scout's next scan finds it (the first release had no scout state)
            conn.execute("update sandbox_battles set scout_seen_at = null")
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        status, error = conn.execute("select status, error from sandbox_battles where id = %s", (unscored,)).fetchone()
        assert status == "failed" and "completed without a score" in error
        assert conn.execute("select bool_and(convalidated) from pg_constraint "
                            "where conname = 'sandbox_battles_completed_has_score'").fetchone()[0] is True
    store = PsycopgStore(url)
    try:
        assert Queries(store).triage_battles(95, Decimal("0.5"), 7)["triaged"] >= 1
    finally:
        store.close()


@pytest.mark.parametrize("start", ["empty", "first_release", "second_release"])
def test_the_printed_script_builds_the_same_database(pg_server, fresh_catalog, start):
    url = fresh_database(pg_server, f"migrations_print_{start}")
    if start != "empty":
        execute_script(url, (FIRST_RELEASE if start == "first_release" else SECOND_RELEASE).read_text())
        with psycopg.connect(url, autocommit=True) as conn:
            (seed_with_first_release if start == "first_release" else seed_with_second_release)(conn)
            before = rows(conn)
    execute_script(url, print_sql())
    if start == "second_release":
        with psycopg.connect(url, autocommit=True) as conn:
            assert without_new_columns(rows(conn)) == before
    execute_script(url, print_sql())  # pasted twice: still the same
    assert recorded(url) == ALL_MIGRATIONS
    assert_same_catalog(catalog(url), fresh_catalog)


def test_supabase_files_are_written_in_order_once_and_build_the_same_database(pg_server, fresh_catalog, tmp_path):
    written = supabase_files(tmp_path)
    names = [path.name for path in written]
    assert names == sorted(names) and len({name[:14] for name in names}) == len(names)
    assert [name[15:-4] for name in names] == ALL_MIGRATIONS + ["training_functions"]
    assert supabase_files(tmp_path) == [], "nothing new: nothing written"
    url = fresh_database(pg_server, "migrations_supabase_cli")
    execute_script(url, FIRST_RELEASE.read_text())
    for path in written:  # as `supabase db push` applies them: in name order, each once
        execute_script(url, path.read_text())
    assert recorded(url) == ALL_MIGRATIONS
    assert_same_catalog(catalog(url), fresh_catalog)


def test_two_migrates_at_once_apply_each_step_once(pg_server, service_role):
    url = fresh_database(pg_server, "migrations_concurrent")
    execute_script(url, FIRST_RELEASE.read_text())
    results = []
    with psycopg.connect(url) as holder:
        holder.execute("select pg_advisory_xact_lock(hashtext(%s))", (LOCK_KEY,))  # both must queue behind it
        threads = [threading.Thread(target=lambda: results.append(migrate(url))) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_until(lambda: holder.execute("select count(*) from pg_locks where locktype = 'advisory' "
                                          "and not granted").fetchone()[0] == 2, 30, "both migrates waiting")
        holder.rollback()
    for thread in threads:
        thread.join(60)
    assert sorted(len(result.applied) for result in results) == [0, len(ALL_MIGRATIONS) - 1]
    assert recorded(url) == ALL_MIGRATIONS


def test_the_cli_says_what_it_did_and_prints_the_script(pg_server, tmp_path):
    url = fresh_database(pg_server, "migrations_cli")
    env = child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=url)

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "lib", "migrate", *args], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert cli().startswith(f"installed lib/sql/schema.sql (fresh database; {len(ALL_MIGRATIONS)} migrations")
    assert cli().splitlines() == ["up to date: no migration pending", "functions re-applied (runs, scout, referee, "
                                  "canary, versions, proposals, dashboard, budget, upkeep, grants)"]
    assert cli("--print") == print_sql()
    out = cli("--supabase", str(tmp_path / "supabase" / "migrations"))
    assert out.splitlines()[-1] == f"{len(ALL_MIGRATIONS) + 1} files written"


def test_the_release_classification_names_real_migrations():
    import re

    from lib.store.migrations import BOOTSTRAP_PATH
    named = set(re.findall(r"'(\d{4}_[a-z0-9_]+)'", BOOTSTRAP_PATH.read_text()))
    assert named and named <= set(ALL_MIGRATIONS)

"""The schema: idempotent, constrained, and every function granted to Supabase's service role."""
import re

import psycopg
import pytest

from lib.store.migrations import functions_sql
from lib.store.psycopg import PsycopgStore
from tests.conftest import fresh_database


def test_every_function_carries_the_prefix_the_grants_select():
    defined = re.findall(r"create or replace function (\w+)\(", functions_sql())
    assert defined and [name for name in defined if not name.startswith("training_")] == []


SUPABASE_ROLES = """
do $$ declare role text; begin
    foreach role in array array['anon', 'authenticated', 'service_role'] loop
        if not exists (select 1 from pg_roles where rolname = role) then
            execute format('create role %I', role);
        end if;
    end loop;
end $$;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
"""


def test_on_supabase_only_the_service_role_may_call_functions_or_touch_tables(pg_server):
    url = fresh_database(pg_server, "schema_roles_test")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SUPABASE_ROLES)  # Supabase's roles and default privileges, before our schema
        store = PsycopgStore(url)
        store.migrate()
        store.close()
        functions = [row[0] for row in conn.execute(
            "select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where n.nspname = 'public' and p.proname like 'training%'")]
        assert len(functions) > 20
        for role in ("anon", "authenticated", "public"):
            callable_by = [fn for fn in functions if conn.execute(
                "select has_function_privilege(%s, %s, 'execute')", (role, fn)).fetchone()[0]]
            assert callable_by == [], f"{role} may call {callable_by}"
            for table in ("training_runs", "sandbox_battles", "sandbox_personas", "training_rescores",
                          "training_referee_calibrations", "training_referee_drift_alerts", "training_versions"):
                if role != "public":
                    assert not conn.execute("select has_table_privilege(%s, %s, 'select')", (role, table)
                                            ).fetchone()[0], f"{role} may read {table}"
        assert all(conn.execute("select has_function_privilege('service_role', %s, 'execute')", (fn,)
                                ).fetchone()[0] for fn in functions)
        assert all(conn.execute("select has_table_privilege('service_role', %s, 'insert')", (table,)).fetchone()[0]
                   for table in ("training_rescores", "training_referee_calibrations", "training_referee_drift_alerts"))


def test_applying_twice_changes_nothing_and_grants_service_role(pg_server):
    url = fresh_database(pg_server, "schema_test")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("do $$ begin create role service_role; exception when duplicate_object then null; end $$")
        store = PsycopgStore(url)
        store.migrate()
        snapshot = conn.execute("select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                                "where n.nspname = 'public'").fetchone()
        store.migrate()
        store.close()
        assert conn.execute("select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                            "where n.nspname = 'public'").fetchone() == snapshot
        assert conn.execute("select count(*) from training_control").fetchone()[0] == 1
        assert conn.execute("select has_function_privilege('service_role', 'training_status(numeric, numeric)', 'execute')"
                            ).fetchone()[0]
        assert not conn.execute("select has_function_privilege('public', 'training_status(numeric, numeric)', 'execute')"
                                ).fetchone()[0]


@pytest.mark.parametrize("statement", [
    "insert into training_runs (trigger, batch_size, cost_cap, deadline_at) values ('cron', 1, -1, now())",
    "insert into training_runs (trigger, batch_size, cost_cap, deadline_at, total_cost) "
    "values ('cron', 1, 1, now(), -2)",
    "insert into training_runs (trigger, batch_size, cost_cap, deadline_at) values ('robot', 1, 1, now())",
    "insert into training_runs (trigger, batch_size, cost_cap, deadline_at, status) "
    "values ('cron', 1, 1, now(), 'completed')",
])
def test_constraints_refuse_bad_rows(db, statement):
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(statement)


def test_every_function_is_granted_on_the_first_apply(pg_server):
    """The grants run last: a function defined below them would only be granted on a second apply."""
    url = fresh_database(pg_server, "schema_grants_test")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("do $$ begin create role service_role; exception when duplicate_object then null; end $$")
        store = PsycopgStore(url)
        store.migrate()
        store.close()
        open_to_all = conn.execute("select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                                   "where n.nspname = 'public' and has_function_privilege('public', p.oid, 'execute')"
                                   ).fetchall()
        granted = conn.execute("select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                               "where n.nspname = 'public' and has_function_privilege('service_role', p.oid, "
                               "'execute')").fetchone()[0]
    assert open_to_all == []
    assert granted == len(set(re.findall(r"create or replace function (\w+)\(", functions_sql())))

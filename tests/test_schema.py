"""The schema: idempotent, constrained, and every function granted to Supabase's service role."""
import re

import psycopg
import pytest

from lib.store import SCHEMA_PATH
from lib.store.psycopg import PsycopgStore
from tests.conftest import fresh_database


def test_every_function_is_in_the_grant_list():
    text = SCHEMA_PATH.read_text()
    defined = set(re.findall(r"create or replace function (\w+)\(", text))
    granted = set(re.findall(r"'(\w+)'", re.search(r"p\.proname in \(([^)]*)\)", text).group(1)))
    assert defined == granted


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
        assert conn.execute("select has_function_privilege('service_role', 'training_status()', 'execute')"
                            ).fetchone()[0]
        assert not conn.execute("select has_function_privilege('public', 'training_status()', 'execute')"
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
    assert granted == len(set(re.findall(r"create or replace function (\w+)\(", SCHEMA_PATH.read_text())))

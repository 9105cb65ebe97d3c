"""What each transport does on its own: auth headers, errors, retries, reconnects."""
import base64
import json
import time

import psycopg
import pytest
import responses

from lib.store import AuthRejected, Unavailable
from lib.store.postgrest import PostgrestStore
from lib.store.psycopg import PsycopgStore

JWT_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"


def jwt(role: str) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"iss": "supabase", "role": role}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{claims}.c2lnbmF0dXJl"


def rest(fake, key=None):
    return PostgrestStore(f"{fake.base_url}/rest/v1", key or fake.key)


@pytest.fixture
def scratch(db):
    """The test database, and the test's own functions and sequence dropped after it: the tests that
    read the schema may run later in the same database (in any order, under pytest-xdist)."""
    yield db
    for name in ("function if exists test_void()", "function if exists flaky()", "sequence if exists flaky_attempts",
                 "function if exists insert_twice()", "function if exists slow_call(float)"):
        db.execute(f"drop {name}")


def test_secret_key_goes_in_apikey_only(fake_postgrest):
    rest(fake_postgrest).call_one("training_status")
    headers = fake_postgrest.headers[-1]
    assert headers["apikey"] == fake_postgrest.key
    assert "Authorization" not in headers


def test_jwt_key_is_also_sent_as_bearer(fake_postgrest):
    fake_postgrest.key = JWT_KEY
    rest(fake_postgrest).call_one("training_status")
    assert fake_postgrest.headers[-1]["Authorization"] == f"Bearer {JWT_KEY}"


def test_wrong_key_is_named_without_echoing_it(fake_postgrest):
    with pytest.raises(AuthRejected) as err:
        rest(fake_postgrest, key="sb_secret_wrong_key_value").call_one("training_status")
    assert "Supabase rejected the service role key" in str(err.value)
    assert "sb_secret_wrong_key_value" not in str(err.value)


def test_void_answer_is_none_and_set_answer_is_a_list(fake_postgrest, scratch):
    scratch.execute("create or replace function test_void() returns void language sql as 'select'")
    store = rest(fake_postgrest)
    assert store.call_void("test_void") is None
    assert store.call_all("training_upsert_personas", p_personas=[]) == []


def test_503_is_retried_until_the_database_answers(fake_postgrest):
    fake_postgrest.unavailable_for = 3
    status = rest(fake_postgrest).call_one("training_status", deadline=time.monotonic() + 5)
    assert status["paused"] is False
    assert fake_postgrest.calls.count("training_status") == 4


@pytest.mark.parametrize("status, body", [
    (504, {"code": "PGRST003", "message": "Timed out acquiring connection from connection pool.", "details": None,
           "hint": None}),
    (502, None), (503, None), (504, None), (520, None), (522, None), (524, None),
])
def test_pool_timeouts_and_gateway_errors_are_retried_within_the_deadline(fake_postgrest, status, body):
    fake_postgrest.scripted = [(status, body)] * 2
    answer = rest(fake_postgrest).call_one("training_status", deadline=time.monotonic() + 5)
    assert answer["paused"] is False
    assert fake_postgrest.calls.count("training_status") == 3


def test_a_gateway_error_past_the_deadline_is_unavailable_naming_the_status(fake_postgrest):
    fake_postgrest.scripted = [(502, None)] * 1000
    with pytest.raises(Unavailable, match=r"Supabase unavailable \(HTTP 502 from its gateway\) calling training_status"):
        rest(fake_postgrest).call_one("training_status", deadline=time.monotonic() + 0.3)


def test_other_errors_without_a_postgrest_body_are_not_retried(fake_postgrest):
    from lib.store import StoreError

    fake_postgrest.scripted = [(500, None), (500, None)]
    with pytest.raises(StoreError, match="unexpected HTTP 500 from Supabase") as err:
        rest(fake_postgrest).call_one("training_status", deadline=time.monotonic() + 5)
    assert not isinstance(err.value, Unavailable)
    assert fake_postgrest.calls.count("training_status") == 1


def test_retries_stop_at_the_callers_deadline(fake_postgrest):
    fake_postgrest.unavailable_for = 1000
    started = time.monotonic()
    with pytest.raises(Unavailable):
        rest(fake_postgrest).call_one("training_status", deadline=started + 0.5)
    assert time.monotonic() - started < 1.5
    assert 2 <= fake_postgrest.calls.count("training_status") < 10


def test_connection_refused_is_unavailable_and_bounded():
    store = PostgrestStore("http://127.0.0.1:9/rest/v1", "key")
    started = time.monotonic()
    with pytest.raises(Unavailable, match="Supabase unreachable"):
        store.call_one("training_status", deadline=started + 0.3)
    assert time.monotonic() - started < 2


def test_psycopg_reconnects_after_the_server_drops_the_connection(database_url, db):
    store = PsycopgStore(database_url)
    store.call_one("training_status")
    [conn] = store._idle
    pid = conn.info.backend_pid
    db.execute("select pg_terminate_backend(%s)", (pid,))
    assert store.call_one("training_status", deadline=time.monotonic() + 5)["paused"] is False
    assert [c.info.backend_pid for c in store._idle] != [pid]
    store.close()


def test_psycopg_unreachable_server_is_unavailable():
    store = PsycopgStore("postgresql://postgres@127.0.0.1:9/none")
    with pytest.raises(Unavailable, match="database unreachable"):
        store.call_one("training_status", deadline=time.monotonic() + 0.2)


def test_psycopg_sends_no_prepared_statements(database_url, db):
    store = PsycopgStore(database_url)
    for _ in range(10):
        store.call_one("training_status")
    [conn] = store._idle
    prepared = conn.execute("select count(*) from pg_prepared_statements").fetchone()[0]
    assert prepared == 0
    store.close()


def test_serialization_failures_are_retried_on_both_transports(store, scratch):
    scratch.execute("create sequence if not exists flaky_attempts")
    scratch.execute("select setval('flaky_attempts', 1, false)")
    scratch.execute("""create or replace function flaky() returns bigint language plpgsql as $$
        declare attempt bigint := nextval('flaky_attempts');  -- sequences survive a rollback
        begin
            if attempt <= 2 then
                raise exception 'could not serialize access' using errcode = '40001';
            end if;
            return attempt;
        end $$""")
    assert store.call_one("flaky", deadline=time.monotonic() + 5) == 3


def test_a_unique_violation_is_a_conflict_on_both_transports(store, scratch):
    from lib.store import Conflict

    scratch.execute("""create or replace function insert_twice() returns void language sql as $$
        insert into sandbox_tactics (id, tactic_text) values ('00000000-0000-0000-0000-000000000001', 'x');
        insert into sandbox_tactics (id, tactic_text) values ('00000000-0000-0000-0000-000000000001', 'x');
    $$""")
    with pytest.raises(Conflict) as err:
        store.call_void("insert_twice")
    assert err.value.code == "23505"
    assert scratch.execute("select count(*) from sandbox_tactics").fetchone()[0] == 0


@pytest.mark.parametrize("public_key", [jwt("anon"), "sb_publishable_AbCdEf0123456789"])
def test_an_anon_or_publishable_key_is_named_as_the_rejected_service_role_key(pg_server, make_settings, public_key):
    """On Supabase the anon role may execute none of our functions: the run is refused as a key problem,
    not answered "No active personas found"."""
    from devtools.fakes.postgrest import FakePostgrest
    from lib.app import make_llm
    from lib.runner import run_batch
    from tests.conftest import fresh_database, seed_personas
    from tests.migrations.test_schema import SUPABASE_ROLES

    url = fresh_database(pg_server, "supabase_anon_key_test")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SUPABASE_ROLES)
    owner = PsycopgStore(url)
    owner.migrate()
    seed_personas(owner, 2)
    owner.close()
    fake = FakePostgrest(url, roles={public_key: "anon"})
    settings = make_settings()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        fake.install(mock)
        with pytest.raises(AuthRejected) as err:
            run_batch(settings, rest(fake, key=public_key), make_llm(settings), trigger="cron")
    assert str(err.value).startswith("Supabase rejected the service role key: check SANDBOX_SUPABASE_SERVICE_ROLE_KEY")
    assert err.value.code == "42501" and "permission denied for function" in err.value.details
    assert public_key not in str(err.value)


@pytest.mark.parametrize("code", ["28P01", "28000"])
def test_a_login_failure_is_an_auth_rejection_on_psycopg_too(code):
    from lib.store import error_for

    assert isinstance(error_for(code, "password authentication failed for user \"x\""), AuthRejected)


def test_psycopg_threads_get_connections_of_their_own_up_to_the_pool_size(database_url, scratch):
    """Calls from several threads run at once in the database, never more than the pool allows."""
    import threading

    db = scratch
    db.execute("create or replace function slow_call(p_seconds float) returns integer language sql as "
               "$$ select 1 from pg_sleep(p_seconds) $$")
    store = PsycopgStore(database_url, max_connections=3)
    threads = [threading.Thread(target=lambda: store.call_one("slow_call", p_seconds=2.0)) for _ in range(5)]
    [t.start() for t in threads]

    def running() -> int:
        return db.execute("select count(*) from pg_stat_activity where query like 'select to_jsonb(\"slow_call\"%%' "
                          "and state = 'active'").fetchone()[0]

    deadline = time.monotonic() + 10
    while running() < 3:
        assert time.monotonic() < deadline, "three calls never ran at once"
        time.sleep(0.05)
    assert running() == 3, "no more than the pool's three connections"
    [t.join(30) for t in threads]
    assert len(store._idle) == 3
    store.close()
    assert store._idle == []

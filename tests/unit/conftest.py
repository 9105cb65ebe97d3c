"""The unit tier runs without PostgreSQL: a test here that asks for it (`pg_server`, or what is built
on it: `database_url`, `db`, `store`, `psycopg_store`, `fake_postgrest`…) fails saying where it belongs."""
import pytest


@pytest.fixture(scope="session")
def pg_server():
    pytest.fail("tests/unit runs without PostgreSQL: a test that needs the database (pg_server, database_url, "
                "db, store…) belongs in tests/integration (or tests/e2e, tests/migrations)", pytrace=False)

"""The docs against the database: every table and column, and every field of a real batch."""
from tests.unit.test_docs import BATCH_HEADER, DOCS, HTTP, data_sections, documented_names, table_rows


def test_every_table_and_column_in_the_database_is_documented_and_nothing_else(pg_server):
    import psycopg

    from lib.store.psycopg import PsycopgStore
    from tests.conftest import fresh_database

    # A database of its own, as `migrate` leaves it: the shared one may hold another test's objects.
    url = fresh_database(pg_server, "docs_schema_test")
    store = PsycopgStore(url)
    store.migrate()
    store.close()
    with psycopg.connect(url) as conn:
        rows = conn.execute("select c.table_name, c.column_name from information_schema.columns c "
                            "join information_schema.tables t using (table_schema, table_name) "
                            "where c.table_schema = 'public' and t.table_type = 'BASE TABLE'").fetchall()
    catalog: dict[str, set[str]] = {}
    for table, column in rows:
        catalog.setdefault(table, set()).add(column)
    documented = data_sections()
    assert set(documented) == set(catalog), "docs/data.md needs one `## `table`` section per table"
    for table, columns in catalog.items():
        assert documented[table] == columns, (
            f"docs/data.md's {table}: undocumented {sorted(columns - documented[table])}, "
            f"gone {sorted(documented[table] - columns)}")


def test_every_field_of_the_batch_and_its_canary_is_documented(make_settings, psycopg_store, db):
    from devtools.seeding import seed_canary
    from lib.app import make_llm
    from lib.training import train_once

    seed_canary(db, psycopg_store)
    settings = make_settings(TRAINING_BATCH_SIZE=2, BATTLE_MAX_TURNS=1)
    batch = train_once(settings, psycopg_store, make_llm(settings), trigger="manual", scout="webhook").batch
    assert batch["canary"] is not None
    rows = table_rows((DOCS / HTTP).read_text(), BATCH_HEADER)
    fields = {name for row in rows for name in documented_names(row[0])}
    assert set(batch) <= fields, f"docs/http.md's batch table lacks {sorted(set(batch) - fields)}"
    [canary_row] = [row for row in rows if "canary" in documented_names(row[0])]
    described = documented_names(canary_row[1])
    assert set(batch["canary"]) - {"note", "message"} <= described, \
        f"docs/http.md's canary row lacks {sorted(set(batch['canary']) - described)}"

"""How a database reaches today's schema: lib/sql/ laid out as procrastinate and pgmq do.

- `lib/sql/schema.sql`: the fresh-install shape of the tables;
- `lib/sql/migrations/NNNN_name.sql`: forward-only steps from the first release's tables;
- `lib/sql/functions/*.sql`: the SQL functions by subject, re-applied on every migrate;
- `lib/sql/bootstrap.sql`: the `training_schema_migrations` table, and the classification of a
  database from a release before it (lib/sql/migrations/README.md states the rule).

`apply` runs in the caller's transaction under one advisory lock, so two migrates at once apply
each step once. `print_sql` is the same for a paste into Supabase's SQL editor (each step guarded
by the migrations table), `supabase_files` the same as Supabase CLI migration files.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
SCHEMA_PATH = SQL_DIR / "schema.sql"
BOOTSTRAP_PATH = SQL_DIR / "bootstrap.sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
FUNCTIONS_DIR = SQL_DIR / "functions"
# The order they are applied in: the upkeep after the functions, the grants last (they cover
# every function defined before them).
FUNCTION_FILES = ("runs", "scout", "referee", "canary", "versions", "proposals", "dashboard", "budget", "upkeep",
                  "grants")
LOCK_KEY = "autonomous_training_schema"
_MIGRATION_NAME = re.compile(r"^\d{4}_[a-z0-9_]+$")
_STEP_QUOTE = "$migration_step$"
SUPABASE_FUNCTIONS_NAME = "training_functions"


class MigrationError(RuntimeError):
    """The migrations on disk or in the database are not a sequence this code can apply."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str


@dataclass(frozen=True)
class MigrateResult:
    installed: bool  # an empty database: schema.sql installed, every migration recorded
    applied: tuple[str, ...]  # the migrations run, in order

    def lines(self) -> list[str]:
        if self.installed:
            said = [f"installed lib/sql/schema.sql (fresh database; {len(self.applied)} migrations recorded)"]
        else:
            said = [f"applied {name}" for name in self.applied] or ["up to date: no migration pending"]
        return [*said, f"functions re-applied ({', '.join(FUNCTION_FILES)})"]


def migrations() -> list[Migration]:
    """The migration files, in order; a misnamed or duplicate-numbered file is an error."""
    found = sorted(MIGRATIONS_DIR.glob("*.sql"))
    bad = [path.name for path in found if not _MIGRATION_NAME.match(path.stem)]
    if bad:
        raise MigrationError(f"migration files must be named NNNN_lower_case_name.sql: {', '.join(bad)}")
    numbers = [path.stem[:4] for path in found]
    if len(set(numbers)) != len(numbers):
        raise MigrationError(f"two migration files share a number in {MIGRATIONS_DIR}")
    return [Migration(path.stem, path.read_text()) for path in found]


def functions_sql(in_transaction: bool = True) -> str:
    # The files define functions that call each other in any order: bodies are checked when
    # called (as pg_dump restores them), not when defined.
    parts = [f"set {'local ' if in_transaction else ''}check_function_bodies = off;"]
    parts += [(FUNCTIONS_DIR / f"{name}.sql").read_text() for name in FUNCTION_FILES]
    return "\n".join(parts)


def apply(conn: psycopg.Connection) -> MigrateResult:
    """Brings the database to today's schema in the caller's transaction; safe to repeat."""
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (LOCK_KEY,))
    [(empty,)] = conn.execute("select to_regclass('training_runs') is null").fetchall()
    conn.execute(BOOTSTRAP_PATH.read_text())
    known = migrations()
    recorded = {row[0] for row in conn.execute("select name from training_schema_migrations")}
    unknown = sorted(recorded - {m.name for m in known})
    if unknown:
        raise MigrationError(f"the database has migrations this code does not know ({', '.join(unknown)}): "
                             "it was migrated by a newer release")
    pending = [m for m in known if m.name not in recorded]
    if empty:
        conn.execute(SCHEMA_PATH.read_text())
    for migration in pending:
        if not empty:
            conn.execute(migration.sql)
        conn.execute("insert into training_schema_migrations (name) values (%s)", (migration.name,))
    conn.execute(functions_sql())
    return MigrateResult(installed=empty, applied=tuple(m.name for m in pending))


def _guarded(migration: Migration) -> str:
    """A migration as plain SQL that runs only if the migrations table lacks it."""
    for quote in (_STEP_QUOTE, "$migrate$"):
        if quote in migration.sql:
            raise MigrationError(f"{migration.name} contains {quote}, which quotes it in --print")
    return (f"-- {migration.name}\n"
            f"do $migrate$\nbegin\n"
            f"    if not exists (select 1 from training_schema_migrations where name = '{migration.name}') then\n"
            f"        execute {_STEP_QUOTE}\n{migration.sql}{_STEP_QUOTE};\n"
            f"        insert into training_schema_migrations (name) values ('{migration.name}');\n"
            f"    end if;\nend;\n$migrate$;\n")


def _preamble() -> str:
    return (f"select pg_advisory_xact_lock(hashtext('{LOCK_KEY}'));\n\n"
            + BOOTSTRAP_PATH.read_text())


def print_sql() -> str:
    """One script for Supabase's SQL editor: safe on an empty database and on any release's."""
    steps = "\n".join(_guarded(m) for m in migrations())
    return ("-- Generated by python -m lib migrate --print: paste it whole in the Supabase SQL editor.\n"
            "-- Safe on an empty database and on any release's: each migration runs once\n"
            "-- (training_schema_migrations), then every function is re-applied.\n"
            "begin;\n" + _preamble() + "\n" + steps + "\n" + functions_sql() + "\ncommit;\n")


def supabase_files(directory: Path, now: dt.datetime | None = None) -> list[Path]:
    """Writes the migrations not yet in `directory` as Supabase CLI migration files
    (`<timestamp>_<name>.sql`, in order, after any already there), then the functions when they
    differ from the last functions file written. Returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    existing = sorted(path for path in directory.glob("*.sql") if re.match(r"^\d{14}_", path.name))
    stamp = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0, tzinfo=None)
    if existing:
        stamp = max(stamp, dt.datetime.strptime(existing[-1].name[:14], "%Y%m%d%H%M%S") + dt.timedelta(seconds=1))
    present = {path.name[15:-4] for path in existing}
    contents = [(m.name, _preamble() + "\n" + _guarded(m)) for m in migrations() if m.name not in present]
    functions = _preamble() + "\n" + functions_sql(in_transaction=False)
    last_functions = [path for path in existing if path.name[15:-4] == SUPABASE_FUNCTIONS_NAME]
    if contents or not last_functions or last_functions[-1].read_text() != functions:
        contents.append((SUPABASE_FUNCTIONS_NAME, functions))
    written = []
    for name, text in contents:
        path = directory / f"{stamp:%Y%m%d%H%M%S}_{name}.sql"
        path.write_text(text)
        written.append(path)
        stamp += dt.timedelta(seconds=1)
    return written

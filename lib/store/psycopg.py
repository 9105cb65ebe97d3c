"""The store over a direct PostgreSQL connection (local, embedded, or Supabase's pooler).

One connection per process, shared by all threads behind a lock; each call is a single
autocommit statement, so one transaction. `prepare_threshold=None` because Supabase's
transaction pooler (pgbouncer) rejects prepared statements. A broken connection is dropped and
the call reported `Unavailable`, which the store retries on a fresh connection.
"""
from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any, Callable

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from lib.store import SCHEMA_PATH, Store, Unavailable, error_for

CONNECT_TIMEOUT_S = 5


class PsycopgStore(Store):
    kind = "psycopg"

    def __init__(self, url: str, on_close: Callable[[], None] | None = None):
        self.url = url
        self._on_close = on_close
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None

    def _connection(self, timeout: float) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(
                self.url, autocommit=True, prepare_threshold=None,
                connect_timeout=max(1, min(CONNECT_TIMEOUT_S, int(timeout))),
            )
        return self._conn

    def _attempt(self, fn: str, args: dict, shape: str, timeout: float) -> Any:
        call = sql.SQL("{}({})").format(
            sql.Identifier(fn),
            sql.SQL(", ").join(sql.SQL("{} => {}").format(sql.Identifier(name), sql.Placeholder(name))
                               for name in args),
        )
        if shape == "all":
            query = sql.SQL("select to_jsonb(r) from {} as r").format(call)
        elif shape == "one":
            query = sql.SQL("select to_jsonb({})").format(call)
        else:
            query = sql.SQL("select {}").format(call)
        params = {name: _adapt(value) for name, value in args.items()}
        rows = self._execute(query, params, timeout)
        if shape == "all":
            return [row[0] for row in rows]
        if shape == "one":
            return rows[0][0] if rows else None
        return None

    def _execute(self, query, params, timeout: float) -> list[tuple]:
        with self._lock:
            try:
                return self._connection(timeout).execute(query, params).fetchall()
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._drop_connection()
                if exc.sqlstate and not exc.sqlstate.startswith(("08", "57P")):
                    raise _typed(exc) from None
                raise Unavailable(f"database unreachable: {_first_line(exc)}", code=exc.sqlstate) from None
            except psycopg.Error as exc:
                raise _typed(exc) from None

    def migrate(self) -> None:
        """Applies the schema in one transaction; safe to repeat."""
        try:
            with self._lock, psycopg.connect(self.url, prepare_threshold=None,
                                             connect_timeout=CONNECT_TIMEOUT_S) as conn:
                conn.execute(SCHEMA_PATH.read_text())
        except psycopg.OperationalError as exc:
            raise Unavailable(f"database unreachable: {_first_line(exc)}", code=exc.sqlstate) from None
        except psycopg.Error as exc:
            raise _typed(exc) from None

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop_connection()
        if self._on_close:
            self._on_close()


def _adapt(value: Any) -> Any:
    """Makes psycopg pass values as PostgREST's JSON does: objects as jsonb, numbers untyped."""
    if isinstance(value, (dict, list)):
        return Jsonb(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _typed(exc: psycopg.Error):
    diag = exc.diag
    return error_for(exc.sqlstate, diag.message_primary or _first_line(exc), diag.message_detail,
                     diag.message_hint)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

"""The store over a direct PostgreSQL connection (local, embedded, or Supabase's pooler).

A small pool: each call borrows an idle connection (or opens one, up to `MAX_CONNECTIONS`) and
gives it back, so battle threads do not queue behind each other's round trips; the pool's lock
is never held over the network. Each call is a single autocommit statement, so one transaction.
`prepare_threshold=None` because Supabase's transaction pooler (pgbouncer) rejects prepared
statements. A broken connection is dropped and the call reported `Unavailable`, which the store
retries on a fresh connection.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from lib.store import Rejected, Store, StoreError, Unavailable, error_for, migrations
from lib.store.migrations import MigrateResult, MigrationError

CONNECT_TIMEOUT_S = 5
# A run's threads (its battles, the pause poll) seldom need more at once: a call takes a millisecond
# or so, a battle's LLM calls hundreds.
MAX_CONNECTIONS = 8


class PsycopgStore(Store):
    kind = "psycopg"

    def __init__(self, url: str, on_close: Callable[[], None] | None = None, max_connections: int = MAX_CONNECTIONS):
        self.url = url
        self._on_close = on_close
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._idle: list[psycopg.Connection] = []
        self._opened = 0  # idle and lent out
        self._max = max_connections
        self._closed = False

    def _connection(self, timeout: float) -> psycopg.Connection:
        """An idle connection, else a new one while under the limit, else the next one given back."""
        waited_until = time.monotonic() + timeout
        with self._free:
            while True:
                while self._idle:
                    conn = self._idle.pop()
                    if not (conn.closed or conn.broken):
                        return conn
                    self._opened -= 1
                if self._opened < self._max:
                    self._opened += 1
                    break
                if not self._free.wait(max(0.0, waited_until - time.monotonic())):
                    raise Unavailable(f"no database connection came free within {timeout:.1f}s")
        try:  # outside the lock: connecting is a round trip or three
            return psycopg.connect(self.url, autocommit=True, prepare_threshold=None,
                                   connect_timeout=max(1, min(CONNECT_TIMEOUT_S, int(timeout))))
        except BaseException:
            self._give_back(None)
            raise

    def _give_back(self, conn: psycopg.Connection | None, broken: bool = False) -> None:
        """Returns a borrowed connection to the pool; a broken one (or None: none was made) is let go."""
        with self._free:
            if conn is not None and not (broken or self._closed or conn.closed or conn.broken):
                self._idle.append(conn)
                conn = None
            else:
                self._opened -= 1
            self._free.notify()
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def _attempt(self, fn: str, args: dict[str, Any], shape: str, timeout: float) -> Any:
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

    def _execute(self, query: sql.Composed, params: dict[str, Any], timeout: float) -> list[tuple[Any, ...]]:
        conn = None
        try:
            conn = self._connection(timeout)
            rows = conn.execute(query, params).fetchall()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if conn is not None:
                self._give_back(conn, broken=True)
            if exc.sqlstate and not exc.sqlstate.startswith(("08", "57P")):
                raise _typed(exc) from None
            raise Unavailable(f"database unreachable: {_first_line(exc)}", code=exc.sqlstate) from None
        except psycopg.Error as exc:
            if conn is not None:
                self._give_back(conn)  # the statement failed, the connection is fine
            raise _typed(exc) from None
        except UnicodeEncodeError:  # a lone surrogate: refused while encoding, before anything was sent
            if conn is not None:
                self._give_back(conn)
            raise Rejected("a text value holds a lone surrogate (not valid Unicode); it cannot be stored") from None
        self._give_back(conn)
        return rows

    def migrate(self) -> MigrateResult:
        """Applies what is pending, then the functions, in one transaction; safe to repeat."""
        try:
            with self._lock, psycopg.connect(self.url, prepare_threshold=None,
                                             connect_timeout=CONNECT_TIMEOUT_S) as conn:
                return migrations.apply(conn)
        except psycopg.OperationalError as exc:
            raise Unavailable(f"database unreachable: {_first_line(exc)}", code=exc.sqlstate) from None
        except psycopg.Error as exc:
            raise _typed(exc) from None
        except MigrationError as exc:
            raise StoreError(str(exc)) from None

    def close(self) -> None:
        with self._free:
            self._closed = True  # connections still lent out are closed when given back
            idle, self._idle = self._idle, []
            self._opened -= len(idle)
        for conn in idle:
            try:
                conn.close()
            except psycopg.Error:
                pass
        if self._on_close:
            self._on_close()


def _adapt(value: Any) -> Any:
    """Makes psycopg pass values as PostgREST's JSON does: objects as jsonb, numbers untyped."""
    if isinstance(value, (dict, list)):
        return Jsonb(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _typed(exc: psycopg.Error) -> StoreError:
    if exc.sqlstate is None and isinstance(exc, psycopg.DataError):
        # Refused before it reached the server (a NUL in a text value): the data, not the database.
        return Rejected(_first_line(exc))
    diag = exc.diag
    return error_for(exc.sqlstate, diag.message_primary or _first_line(exc), diag.message_detail,
                     diag.message_hint)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

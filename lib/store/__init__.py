"""One store interface, two transports over the same SQL functions.

Every read and write is a call to a SQL function of `lib/sql/functions/`:

- `call_void(fn, **args)`: the function returns nothing;
- `call_one(fn, **args)`: the function returns one value (a scalar, jsonb or one row);
- `call_all(fn, **args)`: the function returns a set of rows, as a list of dicts.

Values come back as JSON does (numbers, strings, lists, dicts) on both transports. Transports
raise the typed errors below; `Unavailable` and `SerializationFailure` are retried with backoff
until the caller's `deadline` (a `time.monotonic()` value).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lib.redact import redact

if TYPE_CHECKING:
    from lib.store.migrations import MigrateResult

SCHEMA_HINT = ("run python -m lib migrate (or paste the output of python -m lib migrate --print in the Supabase "
               "SQL editor)")
DEFAULT_RETRY_WINDOW_S = 10.0
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# undefined_function naming one of ours ("function training_x(...) does not exist"); the same
# SQLSTATE also means a missing operator ("operator does not exist: text = integer"), a bug, not
# a schema to apply.
_OUR_FUNCTION_MISSING = re.compile(r"\bfunction (?:\w+\.)?training_\w*\(")

# A JSON object as the SQL functions build it (and as an HTTP body carries it).
JSONObject = dict[str, Any]


class StoreError(RuntimeError):
    """An error from the database, with PostgREST's fields: code, message, details, hint.

    Every field is redacted here, whichever transport built it: a driver may quote its
    connection string, password and all.
    """

    def __init__(self, message: str, *, code: str | None = None, details: str | None = None,
                 hint: str | None = None):
        message = redact(message)
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = None if details is None else redact(details)
        self.hint = None if hint is None else redact(hint)


class SchemaMissing(StoreError):
    """The SQL functions are not there: the schema was never applied."""


class AuthRejected(StoreError):
    """The database refused who we are: Supabase refused the key (an anon or publishable key, or a
    wrong one), or PostgreSQL the role (SQLSTATE 42501 insufficient privilege, 28xxx bad login)."""


class Unavailable(StoreError):
    """The database could not be reached; the call did not run and may be retried."""


class SerializationFailure(StoreError):
    """A concurrent transaction won; the call rolled back and may be retried."""


class Conflict(StoreError):
    """A unique constraint refused the write (SQLSTATE 23505)."""


class Rejected(StoreError):
    """The database refused the data: a raised exception, a check or a bad value."""


def error_for(code: str | None, message: str, details: str | None = None,
              hint: str | None = None) -> StoreError:
    """The typed error for a SQLSTATE (or PostgREST code), shared by both transports."""
    code = code or ""
    cls: type[StoreError]
    if code == "PGRST202" or (code == "42883" and _OUR_FUNCTION_MISSING.search(message or "")):
        cls, message, hint = SchemaMissing, f"schema not applied: {SCHEMA_HINT}", message
    elif code in ("40001", "40P01"):
        cls = SerializationFailure
    elif code == "23505":
        cls = Conflict
    elif code == "42501" or code.startswith("28"):
        cls = AuthRejected
    elif code.startswith(("08", "57P", "53")) or code in ("PGRST000", "PGRST001", "PGRST002", "PGRST003"):
        # PGRST003: PostgREST timed out waiting for a pool connection (504); the call never ran.
        cls = Unavailable
    elif code in ("P0001",) or code.startswith(("22", "23")):
        cls = Rejected
    else:
        cls = StoreError
    return cls(message, code=code or None, details=details, hint=hint)


class Store:
    """The interface; transports implement `_attempt` and `close`."""

    kind = "abstract"

    def call_void(self, fn: str, *, deadline: float | None = None, **args: Any) -> None:
        self._call(fn, args, "void", deadline)

    def call_one(self, fn: str, *, deadline: float | None = None, **args: Any) -> Any:
        return self._call(fn, args, "one", deadline)

    def call_all(self, fn: str, *, deadline: float | None = None, **args: Any) -> list[Any]:
        """Rows as dicts (a function returning a set of scalars: the scalars)."""
        return list(self._call(fn, args, "all", deadline))

    def migrate(self) -> MigrateResult:
        """Brings the database to today's schema (lib/store/migrations.py) and says what it did."""
        raise StoreError(
            f"the {self.kind} transport cannot apply the schema: paste the output of python -m lib migrate "
            "--print in the Supabase SQL editor (or set USE_LOCAL_DB=true with LOCAL_DB_URL to your database)"
        )

    def close(self) -> None:
        pass

    def _attempt(self, fn: str, args: dict[str, Any], shape: str, timeout: float) -> Any:
        raise NotImplementedError

    def _call(self, fn: str, args: dict[str, Any], shape: str, deadline: float | None) -> Any:
        if not _IDENTIFIER.match(fn) or not all(_IDENTIFIER.match(name) for name in args):
            raise ValueError(f"not a SQL function call: {fn}({', '.join(args)})")
        return retry_until(lambda timeout: self._attempt(fn, args, shape, timeout), deadline)


def retry_until(attempt: Callable[[float], Any], deadline: float | None) -> Any:
    """Runs `attempt(timeout)`, retrying transient failures with backoff while time remains.

    A retry that would start after the deadline is not made: the last error is raised instead.
    Each attempt gets the time left as its timeout (at least one second, so a call made at the
    deadline to record a battle still has a chance to land).
    """
    if deadline is None:
        deadline = time.monotonic() + DEFAULT_RETRY_WINDOW_S
    backoff = 0.1
    while True:
        timeout = max(1.0, deadline - time.monotonic())
        try:
            return attempt(timeout)
        except (Unavailable, SerializationFailure):
            if time.monotonic() + backoff >= deadline:
                raise
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

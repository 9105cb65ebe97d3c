"""A PostgREST stand-in for `responses`: each RPC runs against the real PostgreSQL.

It answers as PostgREST does: void → 204, scalar → the bare JSON value, set-returning → an
array; errors carry PostgREST's body (`code`, `message`, `details`, `hint`) with its status
mapping. Only the HTTP hop is simulated; the SQL is real.
"""
from __future__ import annotations

import json
import re

import psycopg
import responses
from psycopg import sql

STATUS_BY_SQLSTATE = {"P0001": 400, "23505": 409, "23503": 409, "42883": 404, "40001": 500,
                      "40P01": 500, "42501": 403}


class FakePostgrest:
    def __init__(self, dsn: str, base_url: str = "https://sandbox.supabase.test",
                 key: str = "sb_secret_service_role_for_tests", roles: dict[str, str] | None = None):
        self.dsn = dsn
        self.base_url = base_url
        self.key = key
        # Other keys the gateway takes, and the role each runs as (Supabase: the anon key → anon).
        # The service key runs as the connecting user, which owns everything.
        self.roles = roles or {}
        self.unavailable_for = 0  # answer the next N calls with 503 as if the database were down
        self.unavailable_fn: dict[str, int] = {}  # the same for the next N calls of one function
        # Run (and commit) the next N calls of a function, then answer 504 as a gateway whose
        # connection dropped: the answer is lost, the write is not.
        self.answer_lost_fn: dict[str, int] = {}
        self.scripted: list[tuple[int, object]] = []  # (status, JSON body, or None for a gateway's HTML page)
        self.calls: list[str] = []
        self.headers: list[dict] = []

    def install(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(responses.POST, re.compile(re.escape(self.base_url) + r"/rest/v1/rpc/(\w+)$"),
                          callback=self._handle)

    def _handle(self, request):
        self.headers.append(dict(request.headers))
        role = self.roles.get(request.headers.get("apikey"))
        if request.headers.get("apikey") != self.key and role is None:
            return _reply(401, {"message": "Invalid API key",
                                "hint": "Double check your Supabase `anon` or `service_role` API key."})
        fn = request.url.rsplit("/", 1)[1]
        self.calls.append(fn)
        if self.scripted:
            status, body = self.scripted.pop(0)
            if body is None:
                return (status, {"Content-Type": "text/html"}, f"<html><body><h1>{status}</h1>gateway</body></html>")
            return _reply(status, body)
        if self.unavailable_for > 0 or self.unavailable_fn.get(fn, 0) > 0:
            if self.unavailable_fn.get(fn, 0) > 0:
                self.unavailable_fn[fn] -= 1
            else:
                self.unavailable_for -= 1
            return _reply(503, {"code": "PGRST001", "message": "Database client error. Retrying the connection.",
                                "details": None, "hint": None})
        args = json.loads(request.body or "{}")
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                if role:
                    conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
                answer = self._call(conn, fn, args, role)
            if self.answer_lost_fn.get(fn, 0) > 0:
                self.answer_lost_fn[fn] -= 1
                return (504, {"Content-Type": "text/html"}, "<html><body><h1>504</h1>gateway timeout</body></html>")
            return answer
        except psycopg.OperationalError as exc:
            if exc.sqlstate is None:
                return _reply(503, {"code": "PGRST000", "message": "Could not connect with the database",
                                    "details": str(exc), "hint": None})
            raise

    def _call(self, conn, fn: str, args: dict, role: str | None = None):
        signature = conn.execute(
            """select p.proretset, p.prorettype::regtype::text,
                      array(select format_type(t, null) from unnest(p.proargtypes) t),
                      coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}')
               from pg_proc p join pg_namespace n on n.oid = p.pronamespace
               where n.nspname = 'public' and p.proname = %s""", (fn,)).fetchall()
        match = None
        for retset, rettype, in_types, names, modes in signature:
            in_names = [n for i, n in enumerate(names) if not modes or modes[i] in ("i", "b")]
            if set(args) <= set(in_names):
                match = (retset, rettype, dict(zip(in_names, in_types)))
        if match is None:
            return _reply(404, {"code": "PGRST202",
                                "message": f"Could not find the function public.{fn}({', '.join(sorted(args))}) "
                                           "in the schema cache",
                                "details": "Searched for the function with the given parameter names",
                                "hint": None})
        retset, rettype, types = match
        params = {}
        pieces = []
        for name, value in args.items():
            params[name] = json.dumps(value)
            cast = types[name]
            if cast in ("jsonb", "json"):
                expr = sql.SQL("{}::jsonb").format(sql.Placeholder(name))
            else:
                expr = sql.SQL("({}::jsonb #>> '{{}}')::{}").format(sql.Placeholder(name), sql.SQL(cast))
            pieces.append(sql.SQL("{} => {}").format(sql.Identifier(name), expr))
        call = sql.SQL("{}({})").format(sql.Identifier(fn), sql.SQL(", ").join(pieces))
        if retset:
            query = sql.SQL("select coalesce(json_agg(r), '[]'::json) from {} as r").format(call)
        elif rettype == "void":
            query = sql.SQL("select {}").format(call)
        else:
            query = sql.SQL("select to_json({})").format(call)
        try:
            value = conn.execute(query, params).fetchone()[0]
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
                raise
            diag = exc.diag
            status = STATUS_BY_SQLSTATE.get(exc.sqlstate or "")
            if exc.sqlstate == "42501" and role == "anon":
                status = 401  # PostgREST: insufficient privilege is 401 unless the request was authenticated
            if status is None:
                status = 500 if (exc.sqlstate or "").startswith(("25", "40", "53", "54", "55", "57", "58", "XX")) else 400
            return _reply(status, {"code": exc.sqlstate, "message": diag.message_primary,
                                   "details": diag.message_detail, "hint": diag.message_hint})
        if rettype == "void" and not retset:
            return (204, {}, "")
        return _reply(200, value)


def _reply(status: int, body) -> tuple:
    return (status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body))

"""Builds the services a request or a command needs from Settings."""
from __future__ import annotations

from lib.config import Settings
from lib.llm import LLM, OpenAITransport
from lib.simulator import SimulatedTransport
from lib.store import Store


def make_llm(settings: Settings, latency_scale: float = 1.0) -> LLM:
    """The simulator when LLM_PROVIDER=simulated, else OpenAI (a missing key fails here)."""
    if settings.simulated:
        return LLM(SimulatedTransport(latency_scale), settings.model_prices)
    return LLM(OpenAITransport(settings.require_openai_key(), settings.openai_base_url, settings.reasoning_effort),
               settings.model_prices)


def open_store(settings: Settings) -> Store:
    """The store the settings select (see `lib.config`): PostgREST, psycopg or embedded.

    Each transport is imported only when chosen: `psycopg` and `requests` stay off the paths that
    do not need them.
    """
    database = settings.require_database()
    if database.kind == "postgrest":
        from lib.store.postgrest import PostgrestStore

        return PostgrestStore(database.rest_url, database.service_role_key or "")
    from lib.store.psycopg import PsycopgStore

    if database.kind == "psycopg":
        return PsycopgStore(database.url or "")
    from lib.store.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(settings.embedded_db_dir).start()
    return PsycopgStore(server.url, on_close=server.stop)

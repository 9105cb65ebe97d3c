"""Shared set-up for the benchmarks: a real PostgreSQL (embedded, its own data dir), a migrated
database with enough personas, and the local fake OpenAI server."""
from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager

import psycopg

from lib.config import PROJECT_ROOT, Settings
from lib.personas import CATALOG, upsert_catalog
from lib.store.embedded import EmbeddedPostgres
from lib.store.psycopg import PsycopgStore


@contextmanager
def bench_database(personas: int | None = 60, name: str = "bench"):
    """A fresh database `name` on the embedded server under .data/pg-`name`, migrated, with
    `personas` personas cycled from the catalog (None: the catalog itself)."""
    server = EmbeddedPostgres(PROJECT_ROOT / ".data" / f"pg-{name}").start()
    with psycopg.connect(server.admin_url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    url = server.admin_url(name)
    store = PsycopgStore(url)
    try:
        store.migrate()
        upsert_catalog(store, None if personas is None else
                       [{**CATALOG[i % len(CATALOG)], "name": f"Bench persona {i:03d}"} for i in range(personas)])
        yield url, store
    finally:
        store.close()
        server.stop()


@contextmanager
def fake_openai(latency: float, jitter: float = 0.0, **limits):
    """The fake in its own process, as a real server would be: it does not compete for our GIL.

    `limits`: rpm, tpm, start_level (see devtools/fakes/openai_server.py)."""
    options = [f"--{name.replace('_', '-')}={value}" for name, value in limits.items() if value is not None]
    process = subprocess.Popen([sys.executable, "-m", "devtools.fakes.openai_server", "--latency", str(latency),
                                "--jitter", str(jitter), *options], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                               text=True)
    try:
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


def fake_log(base_url: str, since: int = 0) -> list[dict]:
    """The fake's record of requests from index `since`: arrival, end, status, served delay, model."""
    import requests

    return requests.get(f"{base_url}/_log", params={"since": since}, timeout=30).json()["entries"]


def lower_bound(latencies: list[float], workers: int, delay_s: float) -> float:
    """No runner that starts battles in this order, at most `workers` at once and `delay_s` apart, can
    finish sooner: max(ΣLᵢ/C, max Lᵢ, maxᵢ(i·D + Lᵢ)) (i from 0)."""
    return max(sum(latencies) / workers, max(latencies),
               max(i * delay_s + latency for i, latency in enumerate(latencies)))


def greedy_makespan(latencies: list[float], workers: int, delay_s: float) -> float:
    """The schedule an ideal runner makes: each battle, in order, starts as soon as a worker is free
    and `delay_s` after the previous start; no overhead at all."""
    free = [0.0] * workers
    last_start, end = -delay_s, 0.0
    for latency in latencies:
        slot = min(range(workers), key=free.__getitem__)
        start = max(free[slot], last_start + delay_s)
        free[slot] = start + latency
        last_start, end = start, max(end, start + latency)
    return end


def spread(values: list[float], digits: int = 2) -> str:
    """`min–max (median)` of repeated measurements, or the single value."""
    import statistics

    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{min(values):.{digits}f}–{max(values):.{digits}f} ({statistics.median(values):.{digits}f})"


def settings_for(base_url: str, **env) -> Settings:
    base = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": base_url, "MAX_TRAINING_BATCH_SIZE": "100",
            "MAX_TRAINING_EXECUTION_TIME_MS": "600000", "KILL_SWITCH_THRESHOLD_USD": "100",
            "MAX_CONCURRENT_RUNS": "1"}
    base.update({k: str(v) for k, v in env.items()})
    return Settings.from_env(base)


def reset(url: str) -> None:
    """Battles from earlier rows must not change the next row's admission or rotation."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from training_runs")
        conn.execute("update sandbox_personas set last_battled_at = null, lease_run_id = null")
        conn.execute("update training_control set paused = false, reason = null")


def table(headers: list[str], rows: list[list]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class LatencyProxy:
    """A TCP proxy on 127.0.0.1 that delays every chunk by `delay_s` each way: a database that far
    away (a hosted Supabase is 10–50 ms from a function). Threads, one pair per connection."""

    def __init__(self, target_port: int, delay_s: float):
        import socket
        import threading

        self.delay_s = delay_s
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source, sink) -> None:
        import time

        try:
            while chunk := source.recv(65536):
                time.sleep(self.delay_s)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()

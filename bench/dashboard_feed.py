"""What the dashboard's 2-second poll costs the server with 50,000 battles: `python -m bench.dashboard_feed`.

Seeds 50,000 finished battles (transcripts of about 1,500 characters, runs of 5, over 30 days) with
one INSERT … generate_series, then times, when nothing changed since the cursor:

- in PostgreSQL: `EXPLAIN ANALYZE` of the feed function (its execution time), median of 50 calls,
  against the first release's feed function on the same rows for comparison;
- the whole request: `GET ?view=feed&afterUpdatedAt=…` and `?view=health` through
  `python -m lib serve` on 127.0.0.1 (auth, settings, the kept connection, JSON), median and p95
  of 200 polls.
"""
from __future__ import annotations

import argparse
import secrets
import socket
import statistics
import time

import psycopg
import requests

from bench.common import table
from bench.dashboard_data import dashboard_database, serve
from devtools.seeding import seed_battles

# The first release's feed (c8e0f07), kept here only to measure against: a CTE read twice is
# materialised, with every battle and its transcript, on every poll.
OLD_FEED = """
create or replace function bench_old_feed(p_after_updated_at timestamptz default null,
                                          p_after_id uuid default null, p_limit integer default 50)
returns jsonb language sql stable as $$
    with candidates as (
        select b.*, p.name as persona, r.simulated from sandbox_battles b
        join sandbox_personas p on p.id = b.persona_id join training_runs r on r.id = b.run_id
    ), picked as (
        (select * from candidates where p_after_updated_at is null
         order by updated_at desc, id desc limit least(greatest(p_limit, 1), 200))
        union all
        (select * from candidates where p_after_updated_at is not null
           and (updated_at, id) > (p_after_updated_at, coalesce(p_after_id, '00000000-0000-0000-0000-000000000000'::uuid))
         order by updated_at, id limit least(greatest(p_limit, 1), 200))
    )
    select jsonb_build_object('battles', coalesce(jsonb_agg(jsonb_build_object(
            'id', id, 'runId', run_id, 'persona', persona, 'status', status, 'score', referee_score,
            'cost', cost_usd, 'turns', turns, 'simulated', simulated, 'breakthrough', breakthrough_status,
            'startedAt', started_at, 'updatedAt', updated_at,
            'durationMs', (extract(epoch from coalesce(ended_at, now()) - started_at) * 1000)::bigint)
            order by updated_at desc, id desc), '[]'),
        'cursor', (select jsonb_build_object('updatedAt', updated_at, 'id', id) from picked
                   order by updated_at desc, id desc limit 1))
    from picked;
$$;
"""


def explain_ms(conn, sql: str, params: tuple | None, repeat: int) -> tuple[float, int]:
    """Median execution time (ms) and temporary blocks written, from EXPLAIN (ANALYZE, BUFFERS)."""
    times, temp = [], 0
    for _ in range(repeat):
        plan = conn.execute(f"explain (analyze, buffers, format json) {sql}", params).fetchone()[0][0]
        times.append(plan["Execution Time"])
        temp = max(temp, plan["Plan"].get("Temp Written Blocks", 0))
    return statistics.median(times), temp


def http_ms(session, url: str, params: dict, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = session.get(url, params=params, timeout=10)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(battles: int = 50_000) -> None:
    with dashboard_database("feedbench") as url:
        started = time.monotonic()
        seed_battles(url, battles)
        print(f"seeded {battles:,} battles in {time.monotonic() - started:.1f}s")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(OLD_FEED)
            cursor = conn.execute("select updated_at, id from sandbox_battles order by updated_at desc, id desc "
                                  "limit 1").fetchone()
            size = conn.execute("select pg_size_pretty(pg_total_relation_size('sandbox_battles'))").fetchone()[0]
            rows = []
            for name, sql, params in (
                    ("feed, nothing changed (v2)", "select training_dashboard_feed(%s, %s)", cursor),
                    ("feed, nothing changed (first release)", "select bench_old_feed(%s, %s)", cursor),
                    ("feed, first load (v2)", "select training_dashboard_feed()", ()),
                    ("feed, first load (first release)", "select bench_old_feed()", ()),
                    ("health strip (v2)", "select training_dashboard_health()", ())):
                ms, temp = explain_ms(conn, sql, params, 50 if "v2" in name else 5)
                rows.append([name, f"{ms:.2f}", temp * 8])
        print(f"\nIn PostgreSQL, {battles:,} battles ({size} with transcripts and indexes); "
              "median of EXPLAIN ANALYZE execution times")
        print(table(["call", "ms", "temp files KiB"], rows))

        password, port = secrets.token_urlsafe(12), free_port()
        server = serve(url, password, port)
        try:
            session = requests.Session()
            session.auth = ("admin", password)
            page = f"http://127.0.0.1:{port}/admin/training-monitor"
            session.get(page, params={"view": "health"}, timeout=10).raise_for_status()  # warm: connect, imports
            feed = session.get(page, params={"view": "feed"}, timeout=10).json()
            after = {"view": "feed", "afterUpdatedAt": feed["cursor"]["updatedAt"], "afterId": feed["cursor"]["id"]}
            assert session.get(page, params=after, timeout=10).json()["battles"] == []
            http = [["GET ?view=feed (cursor, nothing changed)", *http_ms(session, page, after, 200)],
                    ["GET ?view=health", *http_ms(session, page, {"view": "health"}, 200)]]
        finally:
            server.terminate()
            server.wait(10)
        print("\nThe whole request through python -m lib serve on 127.0.0.1 (warm, one kept connection), "
              "200 polls")
        print(table(["request", "median ms", "p95 ms"], [[name, f"{m:.2f}", f"{p:.2f}"] for name, m, p in http]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--battles", type=int, default=50_000)
    main(parser.parse_args().battles)

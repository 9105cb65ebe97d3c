"""Sustained throughput of one run against a provider that enforces a requests-per-minute or a
tokens-per-minute limit, as a share of that limit, and the share of calls answered 429.

    python -m bench.pacing              # both rows (about 4 minutes)
    python -m bench.pacing --repeats 3  # ranges over repeated runs

The fake (its own process) keeps OpenAI's buckets: per model, `limit` per minute refilling
continuously, full at the start (a fresh minute), a request taking one request and its estimated
tokens (prompt bytes / 4 + max tokens) when it arrives, 429 when a bucket lacks them, and the
`x-ratelimit-*` headers on every answer. All three roles use one model, so one bucket binds.

One run, MAX_CONCURRENT_BATTLES=10, far more battles than the limit lets through, 400–600 ms per
call. The first seconds spend the full bucket; the sustained rate is measured over the minute
from 25 s to 85 s after the first call, from the fake's own record: answered requests (or their
tokens) per minute. The run's battles in flight show the ramp: the pacer holds new battles while
the bucket runs low, so about as many run as the limit can feed.
"""
from __future__ import annotations

import argparse

import psycopg

from bench.common import bench_database, fake_log, fake_openai, reset, settings_for, spread, table
from lib.app import make_llm
from lib.runner import run_batch

WINDOW = (25.0, 85.0)
DEADLINE_MS = 100_000
ROWS = [("requests", {"rpm": 300, "tpm": 10_000_000}), ("tokens", {"rpm": 100_000, "tpm": 100_000})]


def in_flight(url: str, run_id: str, start: float, end: float) -> float:
    """Battles of the run in flight, averaged over [start, end] seconds after its first battle began."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("select extract(epoch from started_at - min(started_at) over ()), "
                            "extract(epoch from ended_at - min(started_at) over ()) from sandbox_battles "
                            "where run_id = %s", (run_id,)).fetchall()
    covered = sum(max(0.0, min(float(e), end) - max(float(s), start)) for s, e in rows)
    return covered / (end - start)


def one_run(url: str, store, kind: str, limits: dict) -> dict:
    reset(url)
    with fake_openai(0.5, jitter=0.1, **limits) as fake:
        settings = settings_for(fake, TRAINING_BATCH_SIZE=1000, MAX_TRAINING_BATCH_SIZE=1000,
                                MAX_CONCURRENT_BATTLES=10, DELAY_BETWEEN_BATTLES_MS=0, BATTLE_MAX_TURNS=1,
                                MAX_TOKENS_PER_TURN=64, MAX_TRAINING_EXECUTION_TIME_MS=DEADLINE_MS,
                                CLOSER_MODEL="gpt-4o-mini", PERSONA_MODEL="gpt-4o-mini",
                                REFEREE_MODEL="gpt-4o-mini")
        llm = make_llm(settings)
        llm.prepare()
        batch = run_batch(settings, store, llm, trigger="manual")
        entries = fake_log(fake)
    first = min(e["arrived"] for e in entries)
    window = [e for e in entries if WINDOW[0] <= e["arrived"] - first < WINDOW[1] and e["status"] == 200]
    minutes = (WINDOW[1] - WINDOW[0]) / 60
    per_minute = (len(window) if kind == "requests" else sum(e["estimate"] for e in window)) / minutes
    limit = limits["rpm"] if kind == "requests" else limits["tpm"]
    limited = sum(1 for e in entries if e["status"] == 429)
    return {"share": per_minute / limit, "per_minute": per_minute, "limit": limit, "calls": len(entries),
            "limited": limited, "limited_share": limited / len(entries), "battles": batch["battlesCompleted"],
            "in_flight": in_flight(url, batch["batchId"], *WINDOW)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args([] if argv is None and __name__ != "__main__" else argv)
    rows = []
    with bench_database(personas=1000) as (url, store):
        for kind, limits in ROWS:
            runs = [one_run(url, store, kind, limits) for _ in range(args.repeats)]
            limit = runs[0]["limit"]
            rows.append([f"{kind} ({limit:,}/min)", spread([r["per_minute"] for r in runs], 0),
                         spread([100 * r["share"] for r in runs], 1) + " %",
                         f"{sum(r['limited'] for r in runs)} of {sum(r['calls'] for r in runs)}",
                         spread([100 * r["limited_share"] for r in runs], 2) + " %",
                         spread([r["in_flight"] for r in runs], 1), spread([r["battles"] for r in runs], 0)])
            print("  ".join(rows[-1]), flush=True)
    print(f"\nOne run against limits enforced by the fake; sustained rate over {WINDOW[0]:.0f}–{WINDOW[1]:.0f} s; "
          f"{args.repeats} run(s) per row (min–max (median) when repeated)")
    print(table(["binding limit", "sustained /min", "of the limit", "429s", "429 share",
                 "battles in flight", "battles"], rows))


if __name__ == "__main__":
    main()

"""Sustained throughput of one run against a provider that enforces a requests or a tokens limit
per window (OpenAI's minute, or a second as some compatible providers'), as a share of the
binding limit, and the share of calls answered 429.

    python -m bench.pacing              # every row (about 5 minutes)
    python -m bench.pacing --window 1   # the rows of one window only
    python -m bench.pacing --repeats 3  # ranges over repeated runs

The fake (its own process) keeps OpenAI's buckets: per model, `limit` per window refilling
continuously, full at the start (a fresh window), a request taking one request and its estimated
tokens (prompt bytes / 4 + max tokens) when it arrives, 429 when a bucket lacks them, and the
`x-ratelimit-*` headers on every answer (the reset as OpenAI writes it: "20ms", "6m0s"). All
three roles use one model. The pacer is told nothing: it learns the limits and the window from
the headers.

One run, MAX_CONCURRENT_BATTLES=10, far more battles than the limit lets through, 400–600 ms per
call. The first seconds spend the full bucket; the sustained rate is measured over a stretch well
after that (the minute from 25 s to 85 s for a minute's window, 10 s to 40 s for a second's),
from the fake's own record: answered requests and their tokens per window, each as a share of
its limit; the binding limit is the larger share. The run's battles in flight show the ramp: the
pacer holds new battles while the bucket runs low, so about as many run as the limit can feed.
"""
from __future__ import annotations

import argparse

import psycopg

from bench.common import bench_database, fake_log, fake_openai, reset, settings_for, spread, table
from lib.app import make_llm
from lib.runner import run_batch

# (the fake's limits per window, the stretch measured in seconds after the first call, the run's deadline)
ROWS = [({"rpm": 300, "tpm": 10_000_000, "window": 60}, (25.0, 85.0), 100_000),
        ({"rpm": 100_000, "tpm": 100_000, "window": 60}, (25.0, 85.0), 100_000),
        ({"rpm": 10, "tpm": 4_000, "window": 1}, (10.0, 40.0), 60_000)]


def in_flight(url: str, run_id: str, start: float, end: float) -> float:
    """Battles of the run in flight, averaged over [start, end] seconds after its first battle began."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("select extract(epoch from started_at - min(started_at) over ()), "
                            "extract(epoch from ended_at - min(started_at) over ()) from sandbox_battles "
                            "where run_id = %s", (run_id,)).fetchall()
    covered = sum(max(0.0, min(float(e), end) - max(float(s), start)) for s, e in rows)
    return covered / (end - start)


def one_run(url: str, store, limits: dict, measured: tuple[float, float], deadline_ms: int) -> dict:
    reset(url)
    with fake_openai(0.5, jitter=0.1, **limits) as fake:
        settings = settings_for(fake, TRAINING_BATCH_SIZE=1000, MAX_TRAINING_BATCH_SIZE=1000,
                                MAX_CONCURRENT_BATTLES=10, DELAY_BETWEEN_BATTLES_MS=0, BATTLE_MAX_TURNS=1,
                                MAX_TOKENS_PER_TURN=64, MAX_TRAINING_EXECUTION_TIME_MS=deadline_ms,
                                CLOSER_MODEL="gpt-4o-mini", PERSONA_MODEL="gpt-4o-mini",
                                REFEREE_MODEL="gpt-4o-mini")
        llm = make_llm(settings)
        llm.prepare()
        batch = run_batch(settings, store, llm, trigger="manual")
        entries = fake_log(fake)
    first = min(e["arrived"] for e in entries)
    answered = [e for e in entries if measured[0] <= e["arrived"] - first < measured[1] and e["status"] == 200]
    windows = (measured[1] - measured[0]) / limits["window"]
    rates = {"requests": len(answered) / windows, "tokens": sum(e["estimate"] for e in answered) / windows}
    shares = {"requests": rates["requests"] / limits["rpm"], "tokens": rates["tokens"] / limits["tpm"]}
    kind = max(shares, key=lambda name: shares[name])
    limited = sum(1 for e in entries if e["status"] == 429)
    return {"kind": kind, "share": shares[kind], "per_window": rates[kind], "calls": len(entries),
            "limited": limited, "limited_share": limited / len(entries), "battles": batch["battlesCompleted"],
            "in_flight": in_flight(url, batch["batchId"], *measured)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--window", type=float, default=None, help="only the rows of this window (seconds)")
    args = parser.parse_args([] if argv is None and __name__ != "__main__" else argv)
    rows = []
    with bench_database(personas=1000) as (url, store):
        for limits, measured, deadline_ms in ROWS:
            if args.window is not None and limits["window"] != args.window:
                continue
            runs = [one_run(url, store, limits, measured, deadline_ms) for _ in range(args.repeats)]
            per = "min" if limits["window"] == 60 else f"{limits['window']:g} s"
            kinds = sorted({r["kind"] for r in runs})
            rows.append([f"{per}: {limits['rpm']:,} requests, {limits['tpm']:,} tokens", "/".join(kinds),
                         spread([r["per_window"] for r in runs], 0) + f" /{per}",
                         spread([100 * r["share"] for r in runs], 1) + " %",
                         f"{sum(r['limited'] for r in runs)} of {sum(r['calls'] for r in runs)}",
                         spread([100 * r["limited_share"] for r in runs], 2) + " %",
                         spread([r["in_flight"] for r in runs], 1), spread([r["battles"] for r in runs], 0)])
            print("  ".join(rows[-1]), flush=True)
    print(f"\nOne run against limits enforced by the fake; sustained rate well after the first full bucket; "
          f"{args.repeats} run(s) per row (min–max (median) when repeated)")
    print(table(["limits per window", "binding", "sustained", "of the limit", "429s", "429 share",
                 "battles in flight", "battles"], rows))


if __name__ == "__main__":
    main()

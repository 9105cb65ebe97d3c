"""Database round trips per battle for each transport, and the peak memory of a run.

    python -m bench.resources

Both transports run the same batch against the same real SQL: psycopg directly, PostgREST
through the `responses` stand-in that hands each RPC to PostgreSQL (devtools/fakes/postgrest.py).
"""
from __future__ import annotations

import resource
import tracemalloc
from collections import Counter

import responses

from bench.common import bench_database, fake_openai, reset, settings_for, table
from devtools.fakes.postgrest import FakePostgrest
from lib.app import make_llm
from lib.runner import run_batch
from lib.store.postgrest import PostgrestStore
from lib.store.psycopg import PsycopgStore

BATTLES, TURNS = 5, 3


class CountingPsycopgStore(PsycopgStore):
    def __init__(self, url: str):
        super().__init__(url)
        self.calls = Counter()

    def _attempt(self, fn, args, shape, timeout):
        self.calls[fn] += 1
        return super()._attempt(fn, args, shape, timeout)


def count_round_trips(url: str, fake: str) -> list[list]:
    settings = settings_for(fake, TRAINING_BATCH_SIZE=BATTLES, MAX_CONCURRENT_BATTLES=3, DELAY_BETWEEN_BATTLES_MS=0,
                            BATTLE_MAX_TURNS=TURNS, MAX_TOKENS_PER_TURN=64)
    rows = []
    reset(url)
    direct = CountingPsycopgStore(url)
    run_batch(settings, direct, make_llm(settings), trigger="manual")
    direct.close()
    rows.append(["psycopg", direct.calls])
    reset(url)
    postgrest = FakePostgrest(url)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        postgrest.install(mock)
        store = PostgrestStore(f"{postgrest.base_url}/rest/v1", postgrest.key)
        run_batch(settings, store, make_llm(settings), trigger="manual")
        store.close()
    rows.append(["PostgREST", Counter(postgrest.calls)])
    table_rows = []
    for transport, calls in rows:
        per_battle = sum(calls[fn] for fn in ("training_start_battle", "training_record_battle_progress", "training_finish_battle"))
        polls = calls["training_pause_state"]
        commits = calls["training_commit_cost"]  # worst-case pre-commits, and the exact figure at the end
        fixed = sum(calls.values()) - per_battle - polls - commits
        table_rows.append([transport, sum(calls.values()), f"{per_battle / BATTLES:.1f}", fixed, commits, polls])
    return table_rows


def peak_memory(url: str, fake: str) -> list:
    settings = settings_for(fake, TRAINING_BATCH_SIZE=10, MAX_CONCURRENT_BATTLES=3, DELAY_BETWEEN_BATTLES_MS=0,
                            BATTLE_MAX_TURNS=TURNS, MAX_TOKENS_PER_TURN=64)
    reset(url)
    store = PsycopgStore(url)
    run_batch(settings, store, make_llm(settings), trigger="manual")  # warm: imports are not the run's memory
    reset(url)
    tracemalloc.start()
    run_batch(settings, store, make_llm(settings), trigger="manual")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    store.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [10, 3, f"{peak / 1024 / 1024:.1f}", f"{rss:.0f}"]


def main() -> None:
    with bench_database() as (url, _), fake_openai(0.05) as fake:
        rows = count_round_trips(url, fake)
        print(f"Database round trips: {BATTLES} battles of {TURNS} turns, 3 workers, fake OpenAI at 50 ms")
        print(table(["transport", "total calls", "per battle", "per run (fixed)", "cost commits", "pause polls"],
                    rows))
        print("\nPer battle: start_battle + record_battle_progress per turn + finish_battle; per run: start, "
              "finish, the canary's look (one more call while a candidate is under canary); cost commits: the "
              "run's worst-case pre-commits (written before an attempt is sent, each covering four more "
              "attempts or a twentieth of the cap) and its exact figure at the end; the pause poll runs every "
              "0.5 s whatever the batch size.")
        memory = peak_memory(url, fake)
        print("\nPeak memory of a run")
        print(table(["battles", "workers", "traced peak MiB (Python allocations)", "process max RSS MiB"], [memory]))


if __name__ == "__main__":
    main()

"""No serialised hot path, and fan-out: battle starts overlap their database round trips, and one
Vercel Cron call starts CRON_FAN_OUT runs."""
import threading
import time
from itertools import pairwise

import pytest
import requests

from lib.app import make_llm
from lib.runner import run_batch
from lib.store.psycopg import PsycopgStore
from lib.training import train_once
from tests.conftest import LOAD_MARGIN_MS, SECRET, assert_every_battle_ended, seed_personas


class FarPsycopgStore(PsycopgStore):
    """A database 50 ms away (a round trip to a hosted Supabase), counting start_battle calls in flight."""

    def __init__(self, url: str):
        super().__init__(url)
        self.starting = 0
        self.most_starting = 0
        self._count = threading.Lock()

    def _attempt(self, fn, args, shape, timeout):
        if fn != "training_start_battle":
            return super()._attempt(fn, args, shape, timeout)
        with self._count:
            self.starting += 1
            self.most_starting = max(self.most_starting, self.starting)
        try:
            time.sleep(0.05)  # the network's share of the round trip
            return super()._attempt(fn, args, shape, timeout)
        finally:
            with self._count:
                self.starting -= 1


def test_with_no_start_delay_battle_starts_do_not_wait_for_each_others_round_trips(make_settings, db,
                                                                                   database_url, fake_openai):
    store = FarPsycopgStore(database_url)
    seed_personas(store, 4)
    settings = make_settings(TRAINING_BATCH_SIZE=4, MAX_CONCURRENT_BATTLES=4, DELAY_BETWEEN_BATTLES_MS=0)
    batch = run_batch(settings, store, make_llm(settings), trigger="manual")
    store.close()
    assert batch["battlesCompleted"] == 4
    assert store.most_starting >= 2, "starts were written one after another"
    assert_every_battle_ended(db)


def test_with_a_start_delay_rows_stay_spaced_though_the_database_is_far(make_settings, db, database_url):
    store = FarPsycopgStore(database_url)
    seed_personas(store, 3)
    settings = make_settings(TRAINING_BATCH_SIZE=3, MAX_CONCURRENT_BATTLES=3, DELAY_BETWEEN_BATTLES_MS=120)
    batch = run_batch(settings, store, make_llm(settings), trigger="manual")
    store.close()
    starts = [row[0] for row in db.execute("select started_at from sandbox_battles where run_id = %s "
                                           "order by started_at", (batch["batchId"],)).fetchall()]
    gaps = [(b - a).total_seconds() for a, b in pairwise(starts)]
    assert len(gaps) == 2 and min(gaps) >= 0.12, gaps
    assert store.most_starting == 1


def test_a_cron_call_fans_out_into_cron_fan_out_runs_that_share_no_persona(start_server, psycopg_store, db,
                                                                           fake_openai):
    fake_openai.latency = 0.1
    seed_personas(psycopg_store, 9)
    server = start_server(CRON_FAN_OUT=3, MAX_CONCURRENT_RUNS=3, TRAINING_BATCH_SIZE=3)
    answer = requests.get(f"{server.url}/api/cron/train", headers={"Authorization": f"Bearer {SECRET}"}, timeout=60)
    assert answer.status_code == 200 and answer.json()["batch"]["errors"] == []
    deadline = time.monotonic() + 60
    while db.execute("select count(*) from training_runs where status <> 'running'").fetchone()[0] < 3:
        assert time.monotonic() < deadline, "the dispatched runs did not finish"
        time.sleep(0.1)
    runs = db.execute("select trigger, status, battles_started, started_at, finished_at from training_runs").fetchall()
    assert [(trigger, status, started) for trigger, status, started, _, _ in runs] == [("cron", "completed", 3)] * 3
    assert max(r[3] for r in runs) < min(r[4] for r in runs), "the three runs overlapped"
    personas = [row[0] for row in db.execute("select persona_id from sandbox_battles").fetchall()]
    assert len(personas) == len(set(personas)) == 9, "no persona in two runs"
    assert_every_battle_ended(db)


def test_a_manual_post_and_a_dispatched_run_start_one_run_each(start_server, psycopg_store, db):
    seed_personas(psycopg_store, 4)
    server = start_server(CRON_FAN_OUT=2, MAX_CONCURRENT_RUNS=2, TRAINING_BATCH_SIZE=1)
    bearer = {"Authorization": f"Bearer {SECRET}"}
    assert requests.post(f"{server.url}/api/cron/train", headers=bearer, timeout=60).status_code == 200
    assert requests.get(f"{server.url}/api/cron/train?fanOut=0", headers=bearer, timeout=60).status_code == 200
    assert db.execute("select count(*) from training_runs").fetchone()[0] == 2


def test_fan_out_without_the_deployments_url_runs_one_and_says_why(start_server, psycopg_store, db):
    seed_personas(psycopg_store, 2)
    server = start_server(CRON_FAN_OUT=2, MAX_CONCURRENT_RUNS=2, TRAINING_BATCH_SIZE=1, NEXT_PUBLIC_APP_URL=None)
    batch = requests.get(f"{server.url}/api/cron/train", headers={"Authorization": f"Bearer {SECRET}"},
                         timeout=60).json()["batch"]
    assert batch["errors"] == ["Fan-out skipped: dispatching 1 more run needs NEXT_PUBLIC_APP_URL (this deployment's URL)"]
    assert db.execute("select count(*) from training_runs").fetchone()[0] == 1


@pytest.fixture
def deployment():
    """Where NEXT_PUBLIC_APP_URL points: a receiver, and another host it may redirect to."""
    from devtools.fakes.receiver import Receiver

    target, elsewhere = Receiver(), Receiver()
    yield target, elsewhere
    target.stop()
    elsewhere.stop()


def test_a_redirected_fan_out_is_a_failure_naming_the_url_and_carries_no_secret_away(make_settings, psycopg_store,
                                                                                      db, deployment):
    target, elsewhere = deployment
    target.redirect_to = elsewhere.url
    seed_personas(psycopg_store, 1)
    settings = make_settings(NEXT_PUBLIC_APP_URL=target.url, CRON_SECRET=SECRET, TRAINING_BATCH_SIZE=1,
                             VERCEL_AUTOMATION_BYPASS_SECRET="bypass-not-for-elsewhere")
    batch = train_once(settings, psycopg_store, make_llm(settings), trigger="cron", scout="webhook", fan_out=2).batch
    assert elsewhere.received == [], "neither the fan-out nor the scout webhook followed the redirect"
    assert [entry["method"] for entry in target.received] == ["GET", "POST"]
    assert (f"Fan-out run 2 of 2 did not start: HTTP 307 redirect to {elsewhere.url}/api/cron/train (redirects are "
            "not followed: set NEXT_PUBLIC_APP_URL to this deployment's final URL)") in batch["errors"]


def test_a_fan_out_target_trickling_its_answer_does_not_hold_the_run_past_its_deadline(make_settings, psycopg_store,
                                                                                        db, deployment):
    target, _ = deployment
    target.trickle_s = 0.2  # a header byte every 0.2 s: each read is quick, the answer never ends
    seed_personas(psycopg_store, 1)
    settings = make_settings(NEXT_PUBLIC_APP_URL=target.url, CRON_SECRET=SECRET, TRAINING_BATCH_SIZE=1,
                             MAX_TRAINING_EXECUTION_TIME_MS=3000)
    started = time.monotonic()
    batch = train_once(settings, psycopg_store, make_llm(settings), trigger="cron", scout="webhook", fan_out=2,
                       started=started).batch
    elapsed_ms = (time.monotonic() - started) * 1000
    assert elapsed_ms <= 3000 + LOAD_MARGIN_MS, elapsed_ms
    assert batch["status"] == "completed" and any(
        error.startswith("Fan-out run 2 of 2: no complete answer by the run's deadline") for error in batch["errors"])

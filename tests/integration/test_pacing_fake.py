"""Pacing against the fake provider: its RPM/TPM buckets and windows, and a run that keeps under
a token limit its battles need more than."""

import requests

from devtools.fakes.openai_server import FakeOpenAI
from lib.app import make_llm
from lib.runner import run_batch
from tests.conftest import assert_every_battle_ended, seed_personas


def test_the_fake_enforces_a_request_bucket_and_sends_the_rate_limit_headers():
    fake = FakeOpenAI(rpm=2, tpm=100_000).start()
    try:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 400}], "max_completion_tokens": 50}
        answers = [requests.post(f"{fake.base_url}/chat/completions", json=body, timeout=10) for _ in range(3)]
    finally:
        fake.stop()
    assert [a.status_code for a in answers] == [200, 200, 429]
    first, _, limited = (a.headers for a in answers)
    assert (first["x-ratelimit-limit-requests"], first["x-ratelimit-remaining-requests"]) == ("2", "1")
    assert (first["x-ratelimit-limit-tokens"], first["x-ratelimit-remaining-tokens"]) == ("100000", str(100_000 - 150))
    assert first["x-ratelimit-reset-requests"].endswith("s")
    assert limited["x-ratelimit-remaining-requests"] == "0" and float(limited["retry-after-ms"]) > 0


def test_a_run_keeps_under_a_token_limit_its_battles_need_more_than(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 6)
    settings = make_settings(TRAINING_BATCH_SIZE=6, MAX_CONCURRENT_BATTLES=3, BATTLE_MAX_TURNS=1,
                             MAX_TRAINING_EXECUTION_TIME_MS=60_000)
    # First, unlimited: what the six battles ask of the closer's and referee's model (gpt-4o).
    run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    needed = sum(e["estimate"] for e in fake_openai.answered() if e["model"] == "gpt-4o")
    db.execute("delete from training_runs")
    db.execute("update sandbox_personas set last_battled_at = null")
    fake_openai.log.clear()
    # Then with a minute's bucket 7% short of that: without pacing, the last calls would be 429s.
    fake_openai.tpm = int(needed / 1.07)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert batch["battlesCompleted"] == 6, batch
    assert fake_openai.answered(429) == [], "the pacer kept every call under the limit"
    assert sum(e["estimate"] for e in fake_openai.answered() if e["model"] == "gpt-4o") == needed
    assert_every_battle_ended(db)


def test_the_fake_enforces_its_window_and_says_when_the_bucket_is_full_again():
    fake = FakeOpenAI(rpm=10, tpm=4000, window=1.0).start()
    try:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 400}], "max_completion_tokens": 50}
        answers = [requests.post(f"{fake.base_url}/chat/completions", json=body, timeout=10) for _ in range(11)]
    finally:
        fake.stop()
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 200
    first = answers[0].headers
    assert (first["x-ratelimit-remaining-requests"], first["x-ratelimit-remaining-tokens"]) == ("9", "3850")
    # One request (of 10 a second) and 150 tokens (of 4,000 a second) refill in about 100 and 37 ms.
    assert 90 <= int(first["x-ratelimit-reset-requests"].removesuffix("ms")) <= 100
    assert 30 <= int(first["x-ratelimit-reset-tokens"].removesuffix("ms")) <= 37

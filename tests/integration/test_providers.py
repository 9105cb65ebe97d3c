"""The OpenAI provider's answers that need more than a retry: no quota left, reasoning models."""
from decimal import Decimal

import pytest

from devtools.fakes.receiver import Receiver
from lib.app import make_llm
from lib.training import train_once
from tests.conftest import assert_every_battle_ended, seed_personas

BILLING_URL = "https://platform.openai.com/settings/organization/billing"


def test_no_quota_stops_the_run_at_once_and_says_so_in_slack(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 3)
    fake_openai.fail_next("quota", count=1000)
    slack = Receiver()
    settings = make_settings(TRAINING_BATCH_SIZE=3, MAX_CONCURRENT_BATTLES=1,
                             SLACK_WEBHOOK_URL=slack.url + "/services/T/B/X")
    batch = train_once(settings, psycopg_store, make_llm(settings), trigger="cli", scout="in_process").batch
    slack.stop()
    assert len(fake_openai.log) == 1, "not retried, and no other battle asked"
    assert (batch["status"], batch["battlesStarted"], batch["battlesFailed"]) == ("failed", 1, 1)
    assert batch["error"].startswith("gpt-4o: OpenAI refused the call: no quota left (HTTP 429 insufficient_quota: "
                                     "You exceeded your current quota, please check your plan and billing details.)")
    assert BILLING_URL in batch["error"]
    assert db.execute("select status, error from training_runs").fetchone() == ("failed", batch["error"])
    [alert] = slack.bodies()
    assert alert["text"].startswith(":x: Training run failed: gpt-4o: OpenAI refused the call: no quota left")
    assert BILLING_URL in alert["text"]
    assert_every_battle_ended(db)


def test_no_quota_with_battles_in_flight_ends_them_failed_not_timed_out(make_settings, psycopg_store, db,
                                                                        fake_openai):
    seed_personas(psycopg_store, 3)
    fake_openai.latency = 0.05
    fake_openai.fail_next("quota", count=1000)
    settings = make_settings(TRAINING_BATCH_SIZE=3, MAX_CONCURRENT_BATTLES=3)
    batch = train_once(settings, psycopg_store, make_llm(settings), trigger="cli", scout="in_process").batch
    assert batch["status"] == "failed" and batch["battlesTimedOut"] == batch["battlesKilled"] == 0
    assert batch["battlesFailed"] == batch["battlesStarted"] >= 1
    assert len(fake_openai.log) <= 3, "each battle asked at most once"


def test_a_rejected_key_stops_the_run_at_once(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 2)
    fake_openai.fail_next("401", count=1000)
    settings = make_settings(TRAINING_BATCH_SIZE=2, MAX_CONCURRENT_BATTLES=1)
    batch = train_once(settings, psycopg_store, make_llm(settings), trigger="cli", scout="in_process").batch
    assert len(fake_openai.log) == 1
    assert batch["status"] == "failed" and "OpenAI rejected the API key (HTTP 401" in batch["error"]
    assert "SANDBOX_OPENAI_API_KEY" in batch["error"]


@pytest.mark.parametrize("effort", [None, "minimal"])
def test_reasoning_effort_goes_to_reasoning_models_only(make_settings, psycopg_store, db, fake_openai, effort):
    from lib.runner import run_batch

    seed_personas(psycopg_store, 1)
    settings = make_settings(CLOSER_MODEL="gpt-5-mini", PERSONA_MODEL="gpt-4o-mini", REFEREE_MODEL="o4-mini",
                             **({"REASONING_EFFORT": effort} if effort else {}))
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert batch["battlesCompleted"] == 1
    sent = {(entry["model"], entry["reasoning_effort"]) for entry in fake_openai.log}
    assert sent == {("gpt-5-mini", effort or "low"), ("o4-mini", effort or "low"), ("gpt-4o-mini", None)}


def test_an_empty_reply_fails_the_battle_is_never_a_line_and_is_paid_for(make_settings, psycopg_store, db,
                                                                         fake_openai):
    from lib.runner import run_batch

    seed_personas(psycopg_store, 1)
    settings = make_settings(TRAINING_BATCH_SIZE=1)
    fake_openai.fail_next("empty")  # the closer's first line
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    status, error, transcript, cost, completion = db.execute(
        "select status, error, transcript, cost_usd, completion_tokens from sandbox_battles").fetchone()
    assert status == "failed" and transcript == []
    assert error == ("gpt-4o returned an empty reply (finish_reason length: reasoning used the whole token limit; "
                     "lower REASONING_EFFORT or raise MAX_TOKENS_PER_TURN)")
    [call] = fake_openai.answered()
    usage = call["usage"]
    assert completion == usage["completion_tokens"] == 64
    hit = usage["prompt_tokens_details"]["cached_tokens"]
    assert cost == (Decimal("2.5") * (usage["prompt_tokens"] - hit) + Decimal("1.25") * hit + 10 * 64) / 1_000_000
    assert batch["status"] == "failed" and Decimal(str(batch["totalCost"])) == cost


def test_an_answer_without_token_usage_fails_the_battle_saying_so(make_settings, psycopg_store, db, fake_openai):
    from lib.runner import run_batch

    seed_personas(psycopg_store, 1)
    settings = make_settings(TRAINING_BATCH_SIZE=1)
    fake_openai.fail_next("no_usage")  # the closer's first line: nothing to bill it by
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    status, error, transcript = db.execute("select status, error, transcript from sandbox_battles").fetchone()
    assert (status, error, transcript) == ("failed", "gpt-4o: the answer reported no token usage", [])
    assert [e.split(": ", 1)[1] for e in batch["errors"]] == ["gpt-4o: the answer reported no token usage"]


def test_an_empty_seller_reply_is_not_taken_for_a_hang_up(make_settings, psycopg_store, db, fake_openai):
    from lib.runner import run_batch

    seed_personas(psycopg_store, 1)
    settings = make_settings(TRAINING_BATCH_SIZE=1, BATTLE_MAX_TURNS=2)
    fake_openai.fail_next("pass")  # the closer's first line
    fake_openai.fail_next("empty")  # the seller's answer
    run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    status, transcript = db.execute("select status, transcript from sandbox_battles").fetchone()
    assert status == "failed"
    assert [line["speaker"] for line in transcript] == ["closer"], "no '(hangs up)' line made up for the seller"

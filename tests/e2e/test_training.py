"""After the batch: one path for the HTTP function and the CLI, and the run row says what they say."""
import json
import subprocess
import sys
import time

import pytest
import requests
import responses

from devtools.fakes.receiver import Receiver
from devtools.seeding import seed_canary
from lib.app import make_llm
from lib.config import PROJECT_ROOT
from lib.store import Rejected
from lib.store.postgrest import PostgrestStore
from lib.training import train_once
from tests.conftest import SECRET, child_env, seed_personas

SUMMARY_FAILED = "Batch summary to Slack failed: Slack answered HTTP 500"


def run_errors(db, run_id: str | None = None) -> list:
    if run_id is not None:
        return db.execute("select errors from training_runs where id = %s", (run_id,)).fetchone()[0]
    [(errors,)] = db.execute("select errors from training_runs").fetchall()
    return errors


def test_a_slack_failure_after_the_batch_is_in_the_http_response_and_the_row(start_server, psycopg_store, db,
                                                                             fake_openai, slack):
    fake_openai.referee_score = 97
    seed_personas(psycopg_store, 1)
    slack.status = 500
    server = start_server(NEXT_PUBLIC_APP_URL=None)
    response = requests.post(f"{server.url}/api/cron/train", headers={"Authorization": f"Bearer {SECRET}"},
                             timeout=30)
    batch = response.json()["batch"]
    assert response.status_code == 200 and batch["breakthroughs"] == 1
    assert batch["errors"] == [SUMMARY_FAILED]
    assert run_errors(db) == batch["errors"]
    assert '"event": "slack_failed"' in server.stop()


def test_a_slack_failure_after_the_batch_is_in_the_cli_summary_and_the_row(database_url, psycopg_store, db,
                                                                           fake_openai):
    fake_openai.referee_score = 97
    seed_personas(psycopg_store, 1)
    slack = Receiver(status=500)
    env = child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=database_url, OPENAI_API_KEY="sk-test",
                    OPENAI_BASE_URL=fake_openai.base_url, SLACK_WEBHOOK_URL=slack.url + "/services/T/B/X",
                    BATTLE_MAX_TURNS=1, DELAY_BETWEEN_BATTLES_MS=0)
    result = subprocess.run([sys.executable, "-m", "lib", "train", "--batch-size", "1"], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    slack.stop()
    assert result.returncode == 0, result.stderr
    assert f"  ! {SUMMARY_FAILED}\n" in result.stdout
    assert run_errors(db) == [SUMMARY_FAILED]
    # The scout ran here, after the summary: its own failed alert is the scan's, retried next scan.
    assert "scout: 1 processed, 1 new breakthroughs, 0 alerted" in result.stdout
    assert "Slack answered HTTP 500 (retried next scan)" in result.stdout
    assert db.execute("select scout_notified from training_runs").fetchone()[0] is True


def test_a_failed_kill_switch_alert_is_in_the_batch_and_the_row(make_settings, psycopg_store, db, fake_openai):
    fake_openai.usage = "max"
    seed_personas(psycopg_store, 2)
    settings = make_settings(TRAINING_BATCH_SIZE=2, KILL_SWITCH_THRESHOLD_USD="0.01",
                             SLACK_WEBHOOK_URL="https://hooks.slack.test/services/T/B/X")
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, "https://hooks.slack.test/services/T/B/X", status=500)
        batch = train_once(settings, psycopg_store, make_llm(settings), trigger="manual", scout="webhook").batch
    assert batch["costCapReached"] is True and batch["killSwitchTriggered"] is True  # the deprecated alias too
    assert batch["errors"][-1] == "Cost cap Slack alert failed: Slack answered HTTP 500"
    assert any(error.startswith("Cost cap reached") for error in batch["errors"])
    assert run_errors(db) == batch["errors"]
    assert batch["scoutNotified"] is False and db.execute("select scout_notified from training_runs").fetchone()[0] \
        is False
    db.execute("update training_control set paused = false, reason = null")


def test_the_scout_mode_is_one_of_two(make_settings, psycopg_store):
    settings = make_settings()
    with pytest.raises(ValueError, match="scout must be 'webhook' or 'in_process'"):
        train_once(settings, psycopg_store, make_llm(settings), trigger="cli",
                   scout="cron")  # type: ignore[arg-type]  # the wrong value on purpose


def test_append_run_errors_appends_and_returns_the_new_list(store, db):
    run_id, = db.execute("insert into training_runs (trigger, batch_size, cost_cap, deadline_at, status, finished_at, "
                         "errors) values ('cron', 1, 5, now(), 'completed', now(), '[\"first\"]') returning id"
                         ).fetchone()
    assert store.call_one("training_append_run_errors", p_run_id=str(run_id), p_errors=["second", "third"]) == [
        "first", "second", "third"]
    assert run_errors(db) == ["first", "second", "third"]
    with pytest.raises(Rejected, match="errors must be a JSON array"):
        store.call_one("training_append_run_errors", p_run_id=str(run_id), p_errors={"not": "a list"})
    with pytest.raises(Rejected, match="does not exist"):
        store.call_one("training_append_run_errors", p_run_id="00000000-0000-0000-0000-000000000000",
                       p_errors=["x"])


def test_a_failed_canary_decision_alert_is_kept_in_the_row_and_the_response_beside_other_failures(
        make_settings, psycopg_store, db, fake_openai, slack):
    seed_canary(db, psycopg_store, won_pairs=12)  # 40-point wins: the betting rule adopts from 12
    fake_openai.referee_score = 97  # a breakthrough, so the batch summary goes to Slack too
    slack.status = 500
    settings = make_settings(TRAINING_BATCH_SIZE=2, BATTLE_MAX_TURNS=1,
                             SLACK_WEBHOOK_URL=slack.url + "/services/T0/B0/x")
    batch = train_once(settings, psycopg_store, make_llm(settings), trigger="manual", scout="webhook").batch
    assert batch["canary"]["decision"] == "adopted"
    canary_failed = [e for e in batch["errors"] if e.startswith("Canary decision to Slack failed")]
    assert len(canary_failed) == 1 and "Slack answered HTTP 500" in canary_failed[0]
    assert SUMMARY_FAILED in batch["errors"]
    assert run_errors(db, batch["batchId"]) == batch["errors"]


def test_a_failed_canary_decision_alert_alone_is_saved_on_the_row(make_settings, psycopg_store, db, fake_openai,
                                                                 slack):
    seed_canary(db, psycopg_store, won_pairs=12)  # 40-point wins: the betting rule adopts from 12
    slack.status = 500
    settings = make_settings(TRAINING_BATCH_SIZE=2, BATTLE_MAX_TURNS=1,
                             SLACK_WEBHOOK_URL=slack.url + "/services/T0/B0/x")
    batch = train_once(settings, psycopg_store, make_llm(settings), trigger="manual", scout="in_process").batch
    assert [e for e in batch["errors"] if e.startswith("Canary decision to Slack failed")]
    assert run_errors(db, batch["batchId"]) == batch["errors"]


def train_past_the_deadline(make_settings, fake_postgrest):
    """A webhook run whose deadline is long past when its follow-ups end (the usual case): the
    scout's webhook is not tried for lack of time, an error to save on the run's row."""
    store = PostgrestStore(f"{fake_postgrest.base_url}/rest/v1", fake_postgrest.key)
    seed_personas(store, 1)
    settings = make_settings(MAX_TRAINING_EXECUTION_TIME_MS=1000, NEXT_PUBLIC_APP_URL="http://127.0.0.1:9")
    try:
        return train_once(settings, store, make_llm(settings), trigger="manual", scout="webhook",
                          started=time.monotonic() - 60).batch
    finally:
        store.close()


SCOUT_NOT_NOTIFIED = "Failed to notify Tactical Scout: no time left before the deadline"


def test_follow_up_errors_are_saved_through_a_brief_outage_after_the_deadline(make_settings, fake_postgrest, db):
    fake_postgrest.unavailable_fn = {"training_append_run_errors": 2, "training_set_scout_notified": 2}
    batch = train_past_the_deadline(make_settings, fake_postgrest)
    assert SCOUT_NOT_NOTIFIED in batch["errors"]
    assert run_errors(db) == batch["errors"]
    assert fake_postgrest.unavailable_fn == {"training_append_run_errors": 0, "training_set_scout_notified": 0}


def test_a_store_that_stays_down_for_the_follow_ups_loses_no_error_from_the_batch(make_settings, fake_postgrest, db,
                                                                                   caplog):
    fake_postgrest.unavailable_fn = {"training_append_run_errors": 1000}
    batch = train_past_the_deadline(make_settings, fake_postgrest)  # the run is recorded: no exception
    assert SCOUT_NOT_NOTIFIED in batch["errors"]
    assert batch["errors"][-1].startswith("Saving the follow-ups to the run failed: Unavailable: ")
    assert '"event": "follow_ups_not_saved"' in caplog.text and fake_postgrest.key not in caplog.text
    assert batch["errors"][-1].endswith("the errors above are in this answer and the log only")
    assert SCOUT_NOT_NOTIFIED not in run_errors(db)


def test_a_retried_append_whose_first_answer_was_lost_adds_each_error_once(make_settings, fake_postgrest, db):
    fake_postgrest.answer_lost_fn = {"training_append_run_errors": 1}
    batch = train_past_the_deadline(make_settings, fake_postgrest)
    assert fake_postgrest.calls.count("training_append_run_errors") == 2, "retried"
    assert run_errors(db) == batch["errors"] and batch["errors"].count(SCOUT_NOT_NOTIFIED) == 1


def test_a_canary_decision_whose_first_answer_was_lost_is_still_announced(make_settings, fake_postgrest, db,
                                                                          fake_openai, slack):
    store = PostgrestStore(f"{fake_postgrest.base_url}/rest/v1", fake_postgrest.key)
    seed_canary(db, store, won_pairs=12)  # 40-point wins: the betting rule adopts from 12
    fake_postgrest.answer_lost_fn = {"training_record_canary": 1}
    settings = make_settings(TRAINING_BATCH_SIZE=2, BATTLE_MAX_TURNS=1, SLACK_WEBHOOK_URL=slack.url + "/services/T/B/X")
    try:
        batch = train_once(settings, store, make_llm(settings), trigger="manual", scout="webhook").batch
    finally:
        store.close()
    assert fake_postgrest.calls.count("training_record_canary") == 2, "retried"
    assert batch["canary"]["decision"] == "adopted" and "adopted" in batch["canary"]["message"]
    assert any("adopted" in json.dumps(body) for body in slack.bodies())

"""The daily and monthly budget, held in PostgreSQL across parallel runs, crashes included.

Checked from outside: what the database recorded for the day never passes DAILY_BUDGET_USD, with
the fake billing the most tokens each request allows (the worst case), with runs in parallel
processes, and after one of them is killed with SIGKILL.
"""
import json
import os
import signal
import subprocess
import sys
from decimal import Decimal

import pytest
import requests

from lib.app import make_llm
from lib.config import PROJECT_ROOT
from lib.runner import RunRefused, run_batch
from lib.store.queries import Queries
from tests.conftest import SECRET, assert_every_battle_ended, child_env, seed_personas, wait_until

TODAY = "started_at >= date_trunc('day', now() at time zone 'UTC') at time zone 'UTC'"


def day_spend(db) -> Decimal:
    """The day's recorded spend: every battle of every run started today (UTC)."""
    return db.execute(f"select coalesce(sum(b.cost_usd), 0) from sandbox_battles b join training_runs r "
                      f"on r.id = b.run_id where r.{TODAY}").fetchone()[0]


def spent_today(db, amount: str) -> None:
    """A finished run of today that spent `amount`."""
    db.execute("insert into training_runs (trigger, status, batch_size, cost_cap, total_cost, deadline_at, "
               "finished_at, budget_block) values ('cron', 'completed', 1, 5, %s, now(), now(), %s)",
               (amount, amount))


def test_a_run_takes_a_block_of_the_day_and_gives_back_what_it_did_not_spend(make_settings, psycopg_store, db):
    seed_personas(psycopg_store, 2)
    spent_today(db, "0.70")
    settings = make_settings(TRAINING_BATCH_SIZE=2, DAILY_BUDGET_USD="1.00", KILL_SWITCH_THRESHOLD_USD="5")
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert batch["status"] == "completed"
    block = db.execute("select budget_block from training_runs where id = %s", (batch["batchId"],)).fetchone()[0]
    assert block == Decimal("0.30"), "the block is what the day had left, under the cost cap"
    day = Queries(psycopg_store).status(Decimal("1.00"))["budget"]["day"]
    assert Decimal(str(day["spent"])) == Decimal("0.70") + Decimal(str(batch["totalCost"]))
    assert (day["reserved"], Decimal(str(day["limit"]))) == (0, Decimal("1.00")), "the unspent block is given back"


def test_while_a_run_is_in_progress_its_whole_block_counts(make_settings, psycopg_store, db, fake_openai):
    fake_openai.latency = 0.2
    seed_personas(psycopg_store, 3)
    settings = make_settings(TRAINING_BATCH_SIZE=1, BATTLE_MAX_TURNS=6, DAILY_BUDGET_USD="2.00",
                             KILL_SWITCH_THRESHOLD_USD="1.50", MAX_CONCURRENT_RUNS=2)
    from tests.conftest import batch_in_background

    runner, _ = batch_in_background(settings, psycopg_store)
    wait_until(lambda: db.execute("select count(*) from sandbox_battles").fetchone()[0], 10, "the battle")
    day = Queries(psycopg_store).budget_state(Decimal("2.00"))["day"]
    assert Decimal(str(day["billedUpTo"])) + Decimal(str(day["reserved"])) == Decimal("1.50")
    second = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    runner.join(30)
    assert Decimal(str(second["costCap"])) == Decimal("1.50")
    assert db.execute("select budget_block from training_runs where id = %s",
                      (second["batchId"],)).fetchone()[0] == Decimal("0.50"), "2.00 less the first run's block"


def test_a_run_whose_block_runs_out_stops_without_pausing_training(make_settings, psycopg_store, db, fake_openai):
    fake_openai.usage = "max"
    seed_personas(psycopg_store, 3)
    settings = make_settings(TRAINING_BATCH_SIZE=3, BATTLE_MAX_TURNS=4, MAX_TOKENS_PER_TURN=300,
                             DAILY_BUDGET_USD="0.02", KILL_SWITCH_THRESHOLD_USD="5")
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    assert batch["status"] == "killed" and batch["killSwitchTriggered"] is False
    assert "Daily budget reached: $0.02 of $0.02; resets at 00:00 UTC" in batch["errors"]
    assert db.execute("select paused from training_control").fetchone()[0] is False, "a budget is not a pause"
    assert day_spend(db) <= Decimal("0.02")
    with pytest.raises(RunRefused) as refused:
        run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    assert refused.value.reason == "budget"
    assert str(refused.value).startswith("Daily budget reached: $0.02 of $0.02; resets at 00:00 UTC (")
    assert_every_battle_ended(db)


def test_the_monthly_budget_holds_too(make_settings, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    spent_today(db, "3.00")
    settings = make_settings(MONTHLY_BUDGET_USD="3.00", DAILY_BUDGET_USD="10")
    with pytest.raises(RunRefused) as refused:
        run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    assert str(refused.value).startswith("Monthly budget reached: $3.00 of $3.00; resets on the 1st at 00:00 UTC")
    assert db.execute("select count(*) from training_runs").fetchone()[0] == 1, "no run row for a refusal"


def budget_env(database_url, fake_openai, **extra) -> dict:
    return child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=database_url, OPENAI_API_KEY="sk-test",
                     OPENAI_BASE_URL=fake_openai.base_url, MAX_TOKENS_PER_TURN=300, DELAY_BETWEEN_BATTLES_MS=0,
                     MAX_CONCURRENT_RUNS=8, **extra)


def test_parallel_runs_never_pass_the_daily_budget_with_worst_case_usage(database_url, psycopg_store, db,
                                                                        fake_openai):
    fake_openai.usage = "max"
    fake_openai.latency = 0.15
    seed_personas(psycopg_store, 24)
    # A battle bills about $0.03 at worst: each run's cost cap holds one, the day three or so.
    env = budget_env(database_url, fake_openai, DAILY_BUDGET_USD="0.10", KILL_SWITCH_THRESHOLD_USD="0.05",
                     BATTLE_MAX_TURNS=3)
    outcomes = []
    for _ in range(2):  # two waves of six parallel runs
        processes = [subprocess.Popen([sys.executable, "-m", "lib", "train", "--batch-size", "1"],
                                      cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for _ in range(6)]
        outcomes += [p.communicate(timeout=90) for p in processes]
    refusals = [err for _, err in outcomes if "Daily budget reached" in err]
    assert refusals, "some runs found the day's budget taken"
    assert day_spend(db) <= Decimal("0.10")
    assert db.execute(f"select sum(total_cost) from training_runs where {TODAY}").fetchone()[0] == day_spend(db)
    assert day_spend(db) >= Decimal("0.05"), "the budget was used, not refused wholesale"
    assert db.execute("select paused from training_control").fetchone()[0] is False, "the budget is not a pause"
    assert_every_battle_ended(db)


def test_a_run_killed_with_sigkill_holds_its_block_until_it_is_settled(database_url, psycopg_store, db,
                                                                      fake_openai, make_settings):
    fake_openai.usage = "max"
    fake_openai.latency = 0.2
    seed_personas(psycopg_store, 6)
    env = budget_env(database_url, fake_openai, DAILY_BUDGET_USD="0.10", KILL_SWITCH_THRESHOLD_USD="0.06",
                     BATTLE_MAX_TURNS=8, MAX_TRAINING_EXECUTION_TIME_MS=3000)
    process = subprocess.Popen([sys.executable, "-m", "lib", "train", "--batch-size", "2"], cwd=PROJECT_ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: db.execute("select count(*) from sandbox_battles where turns >= 1").fetchone()[0], 20,
               "a turn recorded")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    orphan, spent_before = db.execute("select r.id, (select sum(cost_usd) from sandbox_battles where run_id = r.id) "
                                      "from training_runs r where status = 'running'").fetchone()
    assert 0 < spent_before < Decimal("0.06")

    settings = make_settings(TRAINING_BATCH_SIZE=1, BATTLE_MAX_TURNS=8, MAX_TOKENS_PER_TURN=300,
                             DAILY_BUDGET_USD="0.10", KILL_SWITCH_THRESHOLD_USD="0.06", MAX_CONCURRENT_RUNS=4)
    meanwhile = run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    block = db.execute("select budget_block from training_runs where id = %s", (meanwhile["batchId"],)).fetchone()[0]
    assert block == Decimal("0.04"), "the dead run's whole block still counts until it is settled"
    assert day_spend(db) <= Decimal("0.10")

    wait_until(lambda: not db.execute("select deadline_at + interval '5 seconds' > now() from training_runs "
                                      "where id = %s", (orphan,)).fetchone()[0], 20, "the orphan's deadline")
    after = run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    assert db.execute("select status from training_runs where id = %s", (orphan,)).fetchone()[0] == "failed"
    block = db.execute("select budget_block from training_runs where id = %s", (after["batchId"],)).fetchone()[0]
    # The orphan counts what it had committed before its calls were sent, not only what it recorded.
    others = db.execute(f"select sum(greatest(total_cost, coalesce(committed_cost, 0))) from training_runs "
                        f"where {TODAY} and id <> %s", (after["batchId"],)).fetchone()[0]
    assert block == min(Decimal("0.06"), Decimal("0.10") - others)
    assert day_spend(db) <= Decimal("0.10")
    assert_every_battle_ended(db)


def test_a_budget_refusal_is_429_with_retry_after_and_reaches_slack_once_a_day(start_server, psycopg_store, db,
                                                                             slack):
    seed_personas(psycopg_store, 2)
    spent_today(db, "1.00")
    db.execute("update training_control set budget_alerted_on = null")  # no alert yet today
    server = start_server(DAILY_BUDGET_USD="1.00")
    answers = [requests.get(f"{server.url}/api/cron/train", headers={"Authorization": f"Bearer {SECRET}"},
                            timeout=30) for _ in range(3)]
    for answer in answers:
        assert answer.status_code == 429
        body = answer.json()
        assert body["error"] == "Daily budget reached"
        assert body["message"] == "Daily budget reached: $1.00 of $1.00; resets at 00:00 UTC"
        assert body["budget"]["day"]["limit"] == 1.0 and body["budget"]["day"]["spent"] == 1.0
        assert 0 < int(answer.headers["Retry-After"]) <= 86_400
    [alert] = slack.bodies()
    assert "Daily budget reached: $1.00 of $1.00" in alert["text"]
    assert db.execute("select count(*) from training_runs").fetchone()[0] == 1


def test_a_budget_alert_slack_refused_is_sent_by_the_next_refusal(start_server, psycopg_store, db, slack):
    seed_personas(psycopg_store, 2)
    spent_today(db, "1.00")
    db.execute("update training_control set budget_alerted_on = null")  # no alert yet today
    server = start_server(DAILY_BUDGET_USD="1.00")
    slack.answer_next(500)
    for _ in range(3):
        answer = requests.get(f"{server.url}/api/cron/train", headers={"Authorization": f"Bearer {SECRET}"},
                              timeout=30)
        assert answer.status_code == 429
    assert [entry["status"] for entry in slack.received] == [500, 200], "refused, sent by the next, then once a day"
    [alert] = slack.bodies()
    assert "Daily budget reached: $1.00 of $1.00" in alert["text"]
    alerted_on = "select budget_alerted_on = (now() at time zone 'UTC')::date from training_control"
    assert db.execute(alerted_on).fetchone()[0] is True


def test_a_paused_loops_call_on_a_spent_day_leaves_the_days_alert_to_the_next_refused_run(make_settings, psycopg_store,
                                                                                         db):
    import time

    from lib.spending import Paused, spend

    spent_today(db, "1.00")
    Queries(psycopg_store).set_paused(True, "a person")
    settings = make_settings(DAILY_BUDGET_USD="1.00")
    with pytest.raises(Paused), spend(settings, psycopg_store, "scout", Decimal("0.10"), time.monotonic() + 10,
                                      simulated=False):
        pass
    assert db.execute("select budget_alerted_on from training_control").fetchone()[0] is None
    assert db.execute("select count(*) from training_spends").fetchone()[0] == 0


def test_status_shows_the_days_and_months_spend_against_the_budgets(database_url, psycopg_store, db):
    spent_today(db, "0.25")
    env = child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=database_url, DAILY_BUDGET_USD="2", MONTHLY_BUDGET_USD="40")
    result = subprocess.run([sys.executable, "-m", "lib", "status"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    budget = json.loads(result.stdout)["budget"]
    assert {k: budget["day"][k] for k in ("spent", "reserved", "limit")} == {"spent": 0.25, "reserved": 0,
                                                                               "limit": 2}
    assert {k: budget["month"][k] for k in ("spent", "reserved", "limit")} == {"spent": 0.25, "reserved": 0,
                                                                                 "limit": 40}

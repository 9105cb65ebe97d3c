"""Money held against the provider's bill, checked from outside.

The fake provider bills every request it processed, with its usage, whether or not our client read
the answer (`FakeOpenAI.ledger`), as OpenAI does. Each case makes calls that are billed without a
usable answer (the client gave up at the deadline, the process was SIGKILLed, the connection dropped
after processing, a gateway 5xx after processing), then asserts billed ≤ the cap for each run and
billed ≤ the daily budget for the day. The fake bills the most tokens each request allows.
"""
import io
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import pytest

from lib import dashboard, proposer, scout, slack
from lib.app import make_llm
from lib.config import PROJECT_ROOT
from lib.personas import generate_with_llm
from lib.progress import print_summary
from lib.runner import RunRefused, run_batch
from lib.spending import BudgetReached
from lib.store.proposal_queries import ProposalQueries
from lib.store.queries import Queries
from tests.conftest import child_env, free_port, seed_personas, wait_until

TODAY = "started_at >= date_trunc('day', now() at time zone 'UTC') at time zone 'UTC'"


def settled(fake) -> Decimal:
    """What the provider billed, once it finished every request it had (the client may be gone)."""
    wait_until(lambda: fake.in_flight == 0, 60, "the provider to finish every request")
    return fake.billed()


def billed_between(fake, start: int, end: int | None = None) -> Decimal:
    return sum((entry["cost"] for entry in fake.ledger[start:end]), Decimal(0))


def block_of(db, run_id: str) -> Decimal:
    return db.execute("select budget_block from training_runs where id = %s", (run_id,)).fetchone()[0]


def runs_one_at_a_time(settings, store, db, fake, most: int) -> list[tuple[Any, Decimal]]:
    """Runs until the budget refuses (at most `most`), each alone: (batch, what the provider billed for it)."""
    runs = []
    for _ in range(most):
        start = len(fake.ledger)
        try:
            batch = run_batch(settings, store, make_llm(settings), trigger="cron")
        except RunRefused as refused:  # the budget is spent (or a cost cap paused training)
            assert refused.reason in ("budget", "paused"), refused
            break
        settled(fake)
        runs.append((batch, billed_between(fake, start)))
    return runs


def test_calls_still_running_at_the_deadline_are_counted_as_billed(make_settings, psycopg_store, db, fake_openai):
    fake_openai.usage, fake_openai.latency = "max", 1.2  # the second call of each battle outlives the deadline
    seed_personas(psycopg_store, 9)
    settings = make_settings(TRAINING_BATCH_SIZE=3, BATTLE_MAX_TURNS=6, MAX_TOKENS_PER_TURN=4000,
                             MAX_TRAINING_EXECUTION_TIME_MS=2000, DAILY_BUDGET_USD="0.30",
                             KILL_SWITCH_THRESHOLD_USD="0.30")
    runs = runs_one_at_a_time(settings, psycopg_store, db, fake_openai, most=4)
    assert runs and any(batch["timedOut"] for batch, _ in runs)
    assert settled(fake_openai) <= Decimal("0.30")
    for batch, billed in runs:
        assert billed <= block_of(db, batch["runId"]) <= Decimal("0.30")
        assert Decimal(str(batch["billedUpTo"])) >= billed, "what may have been billed covers what was"
    assert settled(fake_openai) <= Decimal("0.30")
    assert any(Decimal(str(b["billedUpTo"])) > Decimal(str(b["totalCost"])) for b, _ in runs), \
        "the calls cut off at the deadline were billed without being recorded"


def test_a_process_killed_mid_call_in_every_run_still_holds_the_day(database_url, psycopg_store, db, fake_openai,
                                                                      make_settings):
    fake_openai.usage, fake_openai.latency = "max", 0.4
    seed_personas(psycopg_store, 8)
    budget = dict(DAILY_BUDGET_USD="0.30", KILL_SWITCH_THRESHOLD_USD="0.15", MAX_TOKENS_PER_TURN=4000,
                  BATTLE_MAX_TURNS=6)
    env = child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=database_url, OPENAI_API_KEY="sk-test",
                    OPENAI_BASE_URL=fake_openai.base_url, DELAY_BETWEEN_BATTLES_MS=0, MAX_CONCURRENT_RUNS=4,
                    MAX_TRAINING_EXECUTION_TIME_MS=2500, **budget)
    killed = []
    for _ in range(2):
        start = len(fake_openai.ledger)
        process = subprocess.Popen([sys.executable, "-m", "lib", "train", "--batch-size", "2"], cwd=PROJECT_ROOT,
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Killed with calls in flight after some were answered: the provider finishes and bills them.
        wait_until(lambda start=start: len(fake_openai.ledger) > start and fake_openai.in_flight > 0, 30,
                   "calls in flight")
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        settled(fake_openai)
        killed.append(billed_between(fake_openai, start))
    orphans = [row[0] for row in db.execute("select id from training_runs where status = 'running'").fetchall()]
    assert len(orphans) == 2
    for billed in killed:
        assert billed <= Decimal("0.15")
    # Once their deadlines pass, the next runs close the orphans, counting what they had committed.
    wait_until(lambda: db.execute("select bool_and(deadline_at + interval '5 seconds' < now()) from training_runs "
                                  "where status = 'running'").fetchone()[0], 30, "the orphans' deadlines")
    settings = make_settings(TRAINING_BATCH_SIZE=2, **budget)
    runs = runs_one_at_a_time(settings, psycopg_store, db, fake_openai, most=4)
    assert settled(fake_openai) <= Decimal("0.30")
    for batch, billed in runs:
        assert billed <= block_of(db, batch["runId"])
    committed = db.execute("select sum(committed_cost) from training_runs where id = any(%s)", (orphans,)).fetchone()[0]
    assert committed >= sum(killed), "an orphan counts at least what the provider billed it"
    assert settled(fake_openai) <= Decimal("0.30")


def test_connections_dropped_after_the_provider_processed_the_request(make_settings, psycopg_store, db, fake_openai):
    fake_openai.usage, fake_openai.drop_every = "max", 2
    seed_personas(psycopg_store, 3)
    settings = make_settings(TRAINING_BATCH_SIZE=3, BATTLE_MAX_TURNS=4, MAX_TOKENS_PER_TURN=300,
                             KILL_SWITCH_THRESHOLD_USD="0.05")
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    billed = settled(fake_openai)
    assert any(entry["outcome"] == "drop" for entry in fake_openai.ledger)
    assert billed <= Decimal("0.05")
    assert Decimal(str(batch["totalCost"])) < billed <= Decimal(str(batch["billedUpTo"]))


def test_reported_spend_shows_what_may_have_been_billed(make_settings, psycopg_store, db, fake_openai):
    fake_openai.usage, fake_openai.drop_every = "max", 2
    seed_personas(psycopg_store, 1)
    settings = make_settings(TRAINING_BATCH_SIZE=1, BATTLE_MAX_TURNS=2, KILL_SWITCH_THRESHOLD_USD="0.50")
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    up_to = f"up to ${Decimal(str(batch['billedUpTo'])).quantize(Decimal('0.000001'), rounding='ROUND_CEILING')}"
    note = f"{up_to} may have been billed (calls that timed out or were cut off)"
    assert batch["billingNote"] == note
    out = io.StringIO()
    print_summary(batch, out)
    assert note in out.getvalue(), "the CLI's batch summary"
    assert note in json.dumps(slack.batch_summary_message(batch, None)), "Slack's batch summary"
    day = Queries(psycopg_store).status()["budget"]["day"]
    assert day["note"] == note and day["spent"] == batch["totalCost"], "status"
    health: Any = dashboard.VIEWS["health"](Queries(psycopg_store), {}, settings)
    assert health["today"]["billingNote"] == note, "the dashboard's health strip"


def test_gateway_errors_after_the_provider_processed_the_request(make_settings, psycopg_store, db, fake_openai):
    fake_openai.usage, fake_openai.gateway_error_every = "max", 2
    seed_personas(psycopg_store, 3)
    settings = make_settings(TRAINING_BATCH_SIZE=3, BATTLE_MAX_TURNS=4, MAX_TOKENS_PER_TURN=300,
                             KILL_SWITCH_THRESHOLD_USD="0.05", DAILY_BUDGET_USD="0.04")
    runs = runs_one_at_a_time(settings, psycopg_store, db, fake_openai, most=2)
    assert any(entry["outcome"] == "502" for entry in fake_openai.ledger)
    for batch, billed in runs:
        assert billed <= block_of(db, batch["runId"]) <= Decimal("0.04")
    assert settled(fake_openai) <= Decimal("0.04")


def test_parallel_runs_and_cli_processes_share_one_daily_budget(database_url, psycopg_store, db, fake_openai):
    fake_openai.usage, fake_openai.latency = "max", 0.1
    seed_personas(psycopg_store, 24)
    env = child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=database_url, OPENAI_API_KEY="sk-test",
                    OPENAI_BASE_URL=fake_openai.base_url, DELAY_BETWEEN_BATTLES_MS=0, MAX_CONCURRENT_RUNS=12,
                    MAX_TOKENS_PER_TURN=300, BATTLE_MAX_TURNS=3, DAILY_BUDGET_USD="0.20",
                    KILL_SWITCH_THRESHOLD_USD="0.05")
    commands = [["train", "--batch-size", "1"]] * 10 + [["referee-check", "--json"]] * 2
    processes = [subprocess.Popen([sys.executable, "-m", "lib", *command], cwd=PROJECT_ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for command in commands]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert any("Daily budget reached" in out + err for out, err in outputs), "the day ran out"
    assert settled(fake_openai) <= Decimal("0.20")
    day = Queries(psycopg_store).budget_state(Decimal("0.20"))["day"]
    assert Decimal(str(day["billedUpTo"])) <= Decimal("0.20") and day["reserved"] == 0


def test_scout_scans_with_every_battle_audited_stay_inside_the_day(make_settings, psycopg_store, db, fake_openai):
    fake_openai.usage, fake_openai.referee_score = "max", 97  # every battle a candidate: confirmations too
    seed_personas(psycopg_store, 6)
    settings = make_settings(TRAINING_BATCH_SIZE=6, BATTLE_MAX_TURNS=2, MAX_TOKENS_PER_TURN=300,
                             KILL_SWITCH_THRESHOLD_USD="0.08", DAILY_BUDGET_USD="0.10", REFEREE_AUDIT_SHARE="1",
                             REFEREE_CONFIRM_MODEL="gpt-4o-mini")
    run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    # The run may reach its cost cap, which pauses training, and a paused loop's scout sends
    # nothing (test_while_training_is_paused_the_loops_own_calls_send_nothing): resumed, as a person would.
    Queries(psycopg_store).set_paused(False)
    results = [scout.scan(settings, psycopg_store, make_llm(settings), deadline=time.monotonic() + 20)
               for _ in range(3)]
    assert settled(fake_openai) <= Decimal("0.10")
    assert sum(result["audited"] for result in results) > 0, "the scans did model work"
    assert any("Daily budget reached" in error for result in results for error in result["errors"])
    spends = db.execute("select count(*), bool_and(finished_at is not null) from training_spends "
                        "where purpose = 'scout'").fetchone()
    assert spends[0] >= 1 and spends[1]


def test_attempts_refused_before_any_work_are_not_counted(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 2)
    fake_openai.fail_next("429", count=2, retry_after=0.05)  # answered 429: the provider did no work
    settings = make_settings(TRAINING_BATCH_SIZE=1, BATTLE_MAX_TURNS=1)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    assert len(fake_openai.answered(429)) == 2 and batch["battlesCompleted"] == 1
    assert (batch["billedUpTo"], batch["billingNote"]) == (batch["totalCost"], None)
    # Nothing listens there: every attempt's connection is refused before a request is written.
    nowhere = make_settings(TRAINING_BATCH_SIZE=1, BATTLE_MAX_TURNS=1, OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1")
    batch = run_batch(nowhere, psycopg_store, make_llm(nowhere), trigger="cron")
    assert batch["battlesFailed"] == 1 and batch["billedUpTo"] == 0


def test_persona_generation_and_the_referee_check_are_refused_when_the_day_is_spent(make_settings, psycopg_store, db,
                                                                                    fake_openai, database_url):
    db.execute("insert into training_runs (trigger, status, batch_size, cost_cap, total_cost, deadline_at, "
               "finished_at, budget_block, committed_cost) values ('cron', 'completed', 1, 5, 0.60, now(), now(), "
               "1.00, 1.00)")  # recorded $0.60, but $1.00 may have been billed: the day is spent
    settings = make_settings(DAILY_BUDGET_USD="1.00")
    with pytest.raises(BudgetReached, match=r"^Daily budget reached: \$1\.00 of \$1\.00; resets at 00:00 UTC"):
        generate_with_llm(settings, psycopg_store, make_llm(settings), 2)
    env = child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=database_url, OPENAI_API_KEY="sk-test",
                    OPENAI_BASE_URL=fake_openai.base_url, DAILY_BUDGET_USD="1.00")
    check = subprocess.run([sys.executable, "-m", "lib", "referee-check"], cwd=PROJECT_ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 1 and "error: Daily budget reached: $1.00 of $1.00" in check.stderr
    assert fake_openai.ledger == [], "nothing was sent"


def test_the_proposers_turn_is_refused_when_the_day_is_spent(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 2)
    settings = make_settings(TRAINING_BATCH_SIZE=2, BATTLE_MAX_TURNS=1, PROPOSER_MODEL="gpt-4o-mini",
                             PROPOSER_EVERY=1, DAILY_BUDGET_USD="1.00")
    run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")  # battles for the proposer to read
    db.execute("insert into training_runs (trigger, status, batch_size, cost_cap, total_cost, deadline_at, "
               "finished_at, budget_block, committed_cost) values ('cron', 'completed', 1, 5, 0.60, now(), now(), "
               "1.00, 1.00)")  # recorded $0.60, but $1.00 may have been billed: the day is spent
    sent, errors = len(fake_openai.log), []
    proposal = proposer.take_turn(settings, ProposalQueries(psycopg_store), make_llm(settings),
                                  deadline=time.monotonic() + 20, errors=errors)
    assert proposal is None and len(fake_openai.log) == sent, "nothing was sent"
    assert errors == ["Proposer failed: Daily budget reached: $1.00 of $1.00; resets at 00:00 UTC"]
    assert db.execute("select proposer_turn_at from training_control").fetchone()[0] is None, \
        "the turn is given back: the next run takes it"


def test_while_training_is_paused_the_loops_own_calls_send_nothing(make_settings, psycopg_store, db, fake_openai):
    fake_openai.referee_score = 97  # every battle a breakthrough candidate: the scout has model work
    seed_personas(psycopg_store, 2)
    settings = make_settings(TRAINING_BATCH_SIZE=2, BATTLE_MAX_TURNS=1, PROPOSER_MODEL="gpt-4o-mini",
                             PROPOSER_EVERY=1)
    run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    Queries(psycopg_store).set_paused(True, "a person: stop spending")
    sent = len(fake_openai.log)
    blocks = db.execute("select count(*) from training_spends").fetchone()[0]
    scanned = scout.scan(settings, psycopg_store, make_llm(settings), deadline=time.monotonic() + 20)
    assert any("Training paused (a person: stop spending)" in error for error in scanned["errors"]), scanned
    errors: list[str] = []
    assert proposer.take_turn(settings, ProposalQueries(psycopg_store), make_llm(settings),
                              deadline=time.monotonic() + 20, errors=errors) is None
    assert errors == ["Proposer failed: Training paused (a person: stop spending): its model calls wait until it "
                      "resumes"]
    assert len(fake_openai.log) == sent, "nothing was sent"
    assert db.execute("select count(*) from training_spends").fetchone()[0] == blocks, "no block was taken"
    # A person's own command still runs while training is paused.
    assert generate_with_llm(settings, psycopg_store, make_llm(settings), 1)
    assert len(fake_openai.log) > sent

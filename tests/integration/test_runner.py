"""The batch runner against the real openai SDK, a local fake OpenAI server and real PostgreSQL."""
import threading
import time
from decimal import Decimal
from itertools import pairwise

import pytest
import responses

from lib.app import make_llm
from lib.budget import price_for, usage_cost, worst_case_cost
from lib.config import ConfigError
from lib.runner import RunRefused, run_batch
from lib.training import train_once
from tests.conftest import LOAD_MARGIN_MS, assert_every_battle_ended, batch_in_background, seed_personas, wait_until


def battles(db, run_id=None):
    query = "select b.*, p.name as persona from sandbox_battles b join sandbox_personas p on p.id = b.persona_id"
    args = ()
    if run_id:
        query += " where b.run_id = %s"
        args = (run_id,)
    cursor = db.execute(query + " order by b.started_at", args)
    names = [c.name for c in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def test_a_batch_runs_concurrently_but_never_above_the_worker_limit(make_settings, psycopg_store, db, fake_openai):
    fake_openai.latency = 0.05
    seed_personas(psycopg_store, 6)
    settings = make_settings(TRAINING_BATCH_SIZE=6, MAX_CONCURRENT_BATTLES=2)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert batch["status"] == "completed"
    assert batch["battlesStarted"] == batch["battlesCompleted"] == 6
    assert fake_openai.max_in_flight == 2
    rows = battles(db, batch["batchId"])
    assert len({row["persona"] for row in rows}) == 6, "no persona twice in one run"
    assert all(row["turns"] == 2 and len(row["transcript"]) == 4 for row in rows)
    assert all(row["referee_score"] == Decimal("80.00") for row in rows)
    assert_every_battle_ended(db)


def test_battle_starts_are_spaced_by_the_delay(make_settings, psycopg_store, db):
    seed_personas(psycopg_store, 4)
    settings = make_settings(TRAINING_BATCH_SIZE=4, MAX_CONCURRENT_BATTLES=4, DELAY_BETWEEN_BATTLES_MS=300)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    starts = [row["started_at"] for row in battles(db, batch["batchId"])]
    gaps = [(b - a).total_seconds() for a, b in pairwise(starts)]
    assert len(gaps) == 3 and min(gaps) >= 0.3, gaps


def test_the_run_returns_by_the_deadline_against_a_hung_server(make_settings, psycopg_store, db, fake_openai):
    fake_openai.hang_all = True
    seed_personas(psycopg_store, 3)
    settings = make_settings(TRAINING_BATCH_SIZE=3, MAX_TRAINING_EXECUTION_TIME_MS=2000)
    started = time.monotonic()
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    elapsed_ms = (time.monotonic() - started) * 1000
    assert batch["durationMs"] <= 2000 + LOAD_MARGIN_MS, batch["durationMs"]
    assert elapsed_ms <= 2000 + 1000 + LOAD_MARGIN_MS, elapsed_ms  # the calls hang for 120 s
    assert batch["status"] == "timed_out" and batch["timedOut"] is True
    assert batch["battlesTimedOut"] == batch["battlesStarted"] >= 1
    assert any("Execution timeout" in error for error in batch["errors"])
    assert_every_battle_ended(db)


def test_spend_never_passes_the_cap_and_the_kill_switch_pauses_training(make_settings, psycopg_store, db,
                                                                       fake_openai):
    fake_openai.usage = "max"
    seed_personas(psycopg_store, 5)
    settings = make_settings(TRAINING_BATCH_SIZE=5, MAX_CONCURRENT_BATTLES=3, KILL_SWITCH_THRESHOLD_USD="0.02",
                             BATTLE_MAX_TURNS=4, MAX_TOKENS_PER_TURN=300,
                             SLACK_WEBHOOK_URL="https://hooks.slack.test/services/T/B/X")
    with responses.RequestsMock() as slack:
        slack.add(responses.POST, "https://hooks.slack.test/services/T/B/X", status=200)
        batch = train_once(settings, psycopg_store, make_llm(settings), trigger="manual", scout="webhook").batch
        assert len(slack.calls) == 1
        assert b"Cost cap reached" in slack.calls[0].request.body
    assert batch["status"] == "killed" and batch["killSwitchTriggered"] is True
    assert Decimal(str(batch["totalCost"])) <= Decimal("0.02")
    recorded = db.execute("select sum(cost_usd) from sandbox_battles").fetchone()[0]
    assert recorded <= Decimal("0.02")
    billed = sum(usage_cost(e["usage"]["prompt_tokens"], 0, e["usage"]["completion_tokens"],
                            price_for(e["model"], {})) for e in fake_openai.answered())
    assert billed <= Decimal("0.02"), "the provider's bill stays under the cap too"
    assert batch["battlesKilled"] >= 1
    killed = [row for row in battles(db) if row["status"] == "killed"]
    assert all(row["transcript"] for row in killed if row["turns"]), "killed battles keep their transcripts"
    paused, reason = db.execute("select paused, reason from training_control").fetchone()
    assert paused and reason.startswith("Cost cap reached")
    with pytest.raises(RunRefused) as refused:
        run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    assert refused.value.reason == "paused"
    assert_every_battle_ended(db)


PRICES = {"gpt-4o": (Decimal("2.5"), Decimal("1.25"), Decimal("10")),
          "gpt-4o-mini": (Decimal("0.15"), Decimal("0.075"), Decimal("0.6"))}


def test_recorded_cost_is_exactly_usage_times_price_over_either_transport(store, make_settings, db, fake_openai):
    """What is recorded is what the provider bills: no rounding up per call (the reservation may)."""
    seed_personas(store, 3)
    settings = make_settings(TRAINING_BATCH_SIZE=3, BATTLE_MAX_TURNS=3)
    batch = run_batch(settings, store, make_llm(settings), trigger="manual")
    expected = Decimal(0)
    prompt = cached = completion = 0
    for entry in fake_openai.answered():
        usage = entry["usage"]
        hit = usage["prompt_tokens_details"]["cached_tokens"]
        prompt, cached, completion = prompt + usage["prompt_tokens"], cached + hit, completion + usage["completion_tokens"]
        input_price, cached_price, output_price = PRICES[entry["model"]]
        expected += ((usage["prompt_tokens"] - hit) * input_price + hit * cached_price
                     + usage["completion_tokens"] * output_price) / 1_000_000
    assert cached > 0, "the fake must exercise the cached-input price"
    assert expected.as_tuple().exponent < -6, "some call must cost a fraction of a micro-dollar"
    totals = db.execute("select sum(cost_usd), sum(prompt_tokens), sum(cached_tokens), sum(completion_tokens) "
                        "from sandbox_battles").fetchone()
    assert totals == (expected, prompt, cached, completion)
    assert db.execute("select total_cost from training_runs").fetchone()[0] == expected
    assert Decimal(str(batch["totalCost"])) == expected


def test_the_reservation_stays_rounded_up_while_the_cost_is_exact():
    price = price_for("gpt-4o-mini", {})
    assert usage_cost(1, 0, 0, price) == Decimal("0.00000015")
    assert worst_case_cost(1, 0, price) == Decimal("0.000001")


def test_a_model_with_no_price_is_refused_before_any_call(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 1)
    settings = make_settings(CLOSER_MODEL="mystery-model-9")
    with pytest.raises(ConfigError, match="no price for model 'mystery-model-9': add it to MODEL_PRICES"):
        run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert fake_openai.log == []
    assert db.execute("select count(*) from training_runs").fetchone()[0] == 0


def test_429_makes_every_thread_back_off_together(make_settings, psycopg_store, db, fake_openai):
    fake_openai.latency = 0.05
    fake_openai.fail_next("429", retry_after=0.6)
    seed_personas(psycopg_store, 3)
    settings = make_settings(TRAINING_BATCH_SIZE=3, MAX_CONCURRENT_BATTLES=3)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert batch["battlesCompleted"] == 3
    limited = fake_openai.answered(429)
    assert len(limited) == 1
    answered_at = limited[0]["finished"]
    later = [e["arrived"] for e in fake_openai.log if e["arrived"] > answered_at]
    # Each of the two other threads may have had one call on its way before the 429 reached the
    # client (on a busy machine it arrives after); no thread starts one during the cooldown.
    during = [arrived for arrived in later if arrived < answered_at + 0.55]
    assert later and len(during) <= 2, f"{len(during)} calls during the cooldown"


def test_500s_are_retried_and_then_fail_the_battle_not_the_run(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 2)
    fake_openai.fail_next("500", count=2)
    settings = make_settings(TRAINING_BATCH_SIZE=1)
    first = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert first["battlesCompleted"] == 1

    fake_openai.fail_next("500", count=3)
    # One battle at a time: the first battle's first call takes all three 500s, the second completes.
    second = run_batch(make_settings(TRAINING_BATCH_SIZE=2, MAX_CONCURRENT_BATTLES=1), psycopg_store,
                       make_llm(settings), trigger="manual")
    assert second["status"] == "completed" and second["battlesFailed"] == 1 and second["battlesCompleted"] == 1
    assert any("HTTP 500 after 3 attempts" in error for error in second["errors"])
    assert_every_battle_ended(db)


def test_a_run_in_which_every_battle_failed_is_failed_and_says_why(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 2)
    fake_openai.fail_next("500", count=1000)
    settings = make_settings(TRAINING_BATCH_SIZE=2)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert (batch["status"], batch["battlesCompleted"], batch["battlesFailed"]) == ("failed", 0, 2)
    assert batch["error"] == "no battle completed: 2 failed (the first: gpt-4o: HTTP 500 after 3 attempts)"
    assert db.execute("select status, error from training_runs").fetchone() == ("failed", batch["error"])
    assert_every_battle_ended(db)


def test_malformed_referee_is_retried_once_then_fails_keeping_the_transcript(make_settings, psycopg_store, db,
                                                                             fake_openai):
    seed_personas(psycopg_store, 2)
    settings = make_settings(TRAINING_BATCH_SIZE=1)
    fake_openai.fail_next("malformed", referee_only=True)
    assert run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")["battlesCompleted"] == 1

    fake_openai.fail_next("malformed", count=2, referee_only=True)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    [row] = battles(db, batch["batchId"])
    assert row["status"] == "failed" and "malformed referee answer twice" in row["error"]
    assert len(row["transcript"]) == 4 and row["referee_score"] is None
    assert row["cost_usd"] > 0


@pytest.mark.parametrize("taint", ["\u0000", "\ud800", " \udc00and\u0000"])
def test_a_model_reply_with_nul_or_a_lone_surrogate_is_cleaned_and_the_run_completes(make_settings, psycopg_store,
                                                                                     db, fake_openai, taint):
    fake_openai.taint = taint  # in every line, and inside the referee's JSON strings
    seed_personas(psycopg_store, 2)
    settings = make_settings(TRAINING_BATCH_SIZE=2)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    assert (batch["status"], batch["battlesCompleted"], batch["errors"]) == ("completed", 2, [])
    rows = battles(db, batch["batchId"])
    assert [row["status"] for row in rows] == ["completed", "completed"]
    kept = "".join(ch for ch in taint if ch not in "\u0000\ud800\udc00")  # what stays once cleaned
    for row in rows:
        assert len(row["transcript"]) == 4 and row["transcript"][0]["text"].endswith("date." + kept)
        assert row["referee_feedback"] == "Solid." + kept
    assert db.execute("select status from training_runs").fetchone() == ("completed",)
    assert_every_battle_ended(db)


def test_rotation_covers_every_persona_within_ceil_n_over_batch_runs(make_settings, psycopg_store, db):
    names = seed_personas(psycopg_store, 5)
    settings = make_settings(TRAINING_BATCH_SIZE=2)
    seen = []
    for _ in range(3):
        batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
        run_personas = [row["persona"] for row in battles(db, batch["batchId"])]
        assert len(run_personas) == len(set(run_personas))
        seen += run_personas
    assert set(seen) == set(names)


def test_concurrent_runs_never_share_a_persona(make_settings, psycopg_store, db, fake_openai, database_url):
    from lib.store.psycopg import PsycopgStore

    fake_openai.latency = 0.05
    seed_personas(psycopg_store, 6)
    settings = make_settings(TRAINING_BATCH_SIZE=3, MAX_CONCURRENT_RUNS=2)
    results = []

    def one_run():
        store = PsycopgStore(database_url)
        results.append(run_batch(settings, store, make_llm(settings), trigger="cron"))
        store.close()

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert len(results) == 2
    first, second = ({row["persona"] for row in battles(db, r["batchId"])} for r in results)
    assert len(first) == len(second) == 3 and not first & second


def test_a_second_run_is_refused_while_one_is_in_progress(make_settings, psycopg_store, db, fake_openai):
    fake_openai.latency = 0.2
    seed_personas(psycopg_store, 4)
    settings = make_settings(TRAINING_BATCH_SIZE=2)
    runner, outcome = batch_in_background(settings, psycopg_store)
    wait_until(lambda: db.execute("select count(*) from training_runs where status = 'running'").fetchone()[0],
               timeout=20, message="the first run did not start")
    with pytest.raises(RunRefused) as refused:
        run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    runner.join(30)
    assert refused.value.error == "Run already in progress"
    assert refused.value.outcome["runId"] == outcome["batchId"]


def test_a_batch_in_the_background_re_raises_its_error(make_settings, psycopg_store, db):
    runner, result = batch_in_background(make_settings(), psycopg_store)  # no persona: refused
    with pytest.raises(RunRefused, match="No active personas found"):
        runner.join(30)
    assert result == {}


def test_an_orphaned_run_is_closed_by_the_next_run(make_settings, psycopg_store, db):
    seed_personas(psycopg_store, 2)
    run_id, = db.execute("insert into training_runs (trigger, batch_size, cost_cap, deadline_at, started_at) "
                         "values ('cron', 1, 5, now() - interval '1 minute', now() - interval '2 minutes') "
                         "returning id").fetchone()
    persona_id, = db.execute("update sandbox_personas set lease_run_id = %s where name = 'Skeptical Sam' "
                             "returning id", (run_id,)).fetchone()
    db.execute("insert into sandbox_battles (run_id, persona_id, transcript, turns) values "
               "(%s, %s, '[{\"speaker\": \"closer\", \"text\": \"Hi\"}]', 0)", (run_id, persona_id))
    settings = make_settings(TRAINING_BATCH_SIZE=2)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    assert batch["battlesCompleted"] == 2, "the orphan's persona is free again"
    status, error = db.execute("select status, error from training_runs where id = %s", (run_id,)).fetchone()
    assert status == "failed" and "process died" in error
    orphan_battle = db.execute("select status, transcript from sandbox_battles where run_id = %s",
                               (run_id,)).fetchone()
    assert orphan_battle[0] == "failed" and orphan_battle[1] == [{"speaker": "closer", "text": "Hi"}]
    assert_every_battle_ended(db)


def test_no_active_personas_is_refused_without_a_run_row(make_settings, psycopg_store, db):
    settings = make_settings()
    with pytest.raises(RunRefused) as refused:
        run_batch(settings, psycopg_store, make_llm(settings), trigger="cron")
    assert refused.value.error == "No active personas found"
    assert db.execute("select count(*) from training_runs").fetchone()[0] == 0


def test_promoted_tactics_reach_the_closer_prompt_by_priority(make_settings, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 1)
    db.execute("insert into sandbox_tactics (tactic_text, priority) values "
               "('Offer a flexible closing date.', 2), ('Name the repair costs line by line.', 1)")
    settings = make_settings(TRAINING_BATCH_SIZE=1)
    run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    closer_system = next(e["messages"][0]["content"] for e in fake_openai.log if e["model"] == "gpt-4o"
                         and not e["referee"])
    assert closer_system.index("Name the repair costs") < closer_system.index("Offer a flexible closing date")


def test_batch_size_is_clamped_to_the_maximum(make_settings, psycopg_store, db):
    seed_personas(psycopg_store, 3)
    settings = make_settings(MAX_TRAINING_BATCH_SIZE=2, TRAINING_BATCH_SIZE=2)
    batch = run_batch(settings, psycopg_store, make_llm(settings), trigger="manual", requested_batch_size=50)
    assert (batch["requestedBatchSize"], batch["batchSize"], batch["battlesStarted"]) == (50, 2, 2)


def test_a_batch_runs_the_same_over_either_transport(store, make_settings, db, fake_openai):
    """Every SQL function the runner calls, with uuids, numerics and jsonb, over psycopg and PostgREST."""
    seed_personas(store, 3)
    db.execute("insert into sandbox_tactics (tactic_text) values ('Ask before you pitch.')")
    settings = make_settings(TRAINING_BATCH_SIZE=3, BATTLE_MAX_TURNS=2)
    batch = run_batch(settings, store, make_llm(settings), trigger="cron")
    assert (batch["status"], batch["battlesCompleted"]) == ("completed", 3)
    recorded = db.execute("select sum(cost_usd), count(*) filter (where turns = 2) from sandbox_battles").fetchone()
    assert recorded == (Decimal(str(batch["totalCost"])), 3)
    assert all("Ask before you pitch." in e["messages"][0]["content"] for e in fake_openai.log
               if e["model"] == settings.closer_model and e["schema"] is None)
    assert_every_battle_ended(db)


@pytest.mark.parametrize("causes, run, leftover", [
    ({}, "completed", "failed"),
    ({"timed_out": True}, "timed_out", "timed_out"),
    ({"crashed": True}, "failed", "failed"),
    ({"crashed": True, "timed_out": True}, "failed", "timed_out"),
    ({"budget_spent": True, "timed_out": True}, "killed", "killed"),
    ({"paused": True, "crashed": True}, "killed", "killed"),
    ({"provider_halted": True, "timed_out": True}, "failed", "failed"),
])
def test_how_a_run_and_its_unfinished_battles_end(causes, run, leftover):
    from lib.runner import battle_ending, run_ending

    given = {"crashed": False, "budget_spent": False, "paused": False, "provider_halted": False,
             "timed_out": False, **causes}
    assert run_ending(**given) == (run, leftover)
    given.pop("crashed")  # a crash ends the run, not how its battles end
    assert battle_ending(**given) == leftover

"""A referee you can trust, checked from outside: `python -m lib serve` and the CLI against real
PostgreSQL, the fake OpenAI server answering the referee call by call, and the Slack receiver.

Also the scout's own state (issue 10.1): every candidate decided once, every moment extracted
once, Slack delivery its own state, a backlog drained oldest first with or without Slack.
"""
import json
import random
import subprocess
import sys
from decimal import Decimal

import pytest
import requests

from lib import referee
from lib.app import make_llm
from lib.budget import price_for, usage_cost
from lib.config import PROJECT_ROOT, Settings
from lib.llm import CallContext, Usage
from lib.store.queries import Queries
from lib.store.scout_queries import Rescore
from tests.conftest import SECRET, child_env, seed_personas

AUTH = {"Authorization": f"Bearer {SECRET}"}
ADMIN = "referee-admin-pw"


def train(server, size: int = 1) -> dict:
    response = requests.post(f"{server.url}/api/cron/train", json={"batchSize": size}, headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["batch"]


def scan(server) -> dict:
    response = requests.post(f"{server.url}/api/cron/scout-scan", headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def view(server, name: str):
    response = requests.get(f"{server.url}/admin/training-monitor?view={name}", auth=("admin", ADMIN), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def act(server, action: str, battle_id: str) -> None:
    response = requests.post(f"{server.url}/admin/training-monitor?action={action}", json={"battleId": battle_id},
                             auth=("admin", ADMIN), headers={"Origin": server.url}, timeout=10)
    assert response.status_code == 200, response.text


def trophies(slack) -> list[dict]:
    return [entry for entry in slack.received if entry["json"]["text"].startswith(":trophy:")]


def drift_alerts(slack) -> list[dict]:
    return [body for body in slack.bodies() if body["text"].startswith(":warning: Referee drift")]


@pytest.fixture
def server_for(start_server):
    def start(**overrides):
        return start_server(**{"NEXT_PUBLIC_APP_URL": None, "ADMIN_PASSWORD": ADMIN, "REFEREE_AUDIT_SHARE": "0",
                               **overrides})
    return start


# ---- confirmation before alerting ----

def test_a_96_confirmed_at_80_is_kept_unconfirmed_and_never_alerted(server_for, psycopg_store, db, fake_openai,
                                                                    slack):
    seed_personas(psycopg_store, 1)
    fake_openai.queue_referee(96, 80)
    server = server_for()
    assert train(server)["breakthroughs"] == 1, "a candidate by its first score"
    first = scan(server)
    assert first["breakthroughs"] == [] and first["alerted"] == 0
    [item] = first["unconfirmed"]
    assert (item["score"], item["confirmScore"]) == (96, 80)
    assert "re-score 80.00 is below 92" in item["reason"] and "88.00, below the cutoff 95" in item["reason"]
    again = scan(server)
    assert (again["processed"], again["unconfirmed"], again["breakthroughs"]) == (0, [], []), "decided once"
    assert len(fake_openai.referee_calls()) == 2
    assert trophies(slack) == []
    assert view(server, "breakthroughs")["items"] == [], "not a breakthrough, so not up for review"
    [shown] = view(server, "referee")["unconfirmed"]
    assert shown["id"] == item["battleId"] and (shown["score"], shown["confirmScore"]) == (96, 80)
    assert shown["reason"] == item["reason"] and shown["detectedAt"]


def test_confirmed_at_97_is_alerted_exactly_once_showing_both_scores(server_for, psycopg_store, db, fake_openai,
                                                                    slack):
    seed_personas(psycopg_store, 1)
    fake_openai.queue_referee(96, 97)
    server = server_for()
    train(server)
    results = [scan(server) for _ in range(3)]
    assert [len(r["breakthroughs"]) for r in results] == [1, 0, 0]
    assert [r["alerted"] for r in results] == [1, 0, 0]
    assert results[0]["breakthroughs"][0] | {"battleId": None} == {"battleId": None, "persona": "Skeptical Sam",
                                                                   "score": 96, "confirmScore": 97}
    [alert] = trophies(slack)
    assert "scored 96" in alert["json"]["text"] and "confirmed at 97" in alert["json"]["text"]
    [item] = view(server, "breakthroughs")["items"]
    assert (item["score"], item["confirmScore"], item["slack"], item["status"]) == (96, 97, "sent", "pending_review")
    assert view(server, "referee")["unconfirmed"] == []


def test_the_rescore_spends_under_its_own_cap_and_records_its_cost(server_for, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 1)
    fake_openai.queue_referee(97, 98)
    starved = server_for(REFEREE_RESCORE_CAP_USD="0.000001")
    train(starved)
    calls = len(fake_openai.referee_calls())
    result = scan(starved)
    assert result["breakthroughs"] == [] and result["unconfirmed"] == []
    assert any("REFEREE_RESCORE_CAP_USD" in error for error in result["errors"]), result["errors"]
    assert len(fake_openai.referee_calls()) == calls, "refused before the request left"
    assert db.execute("select confirm_status, scout_attempts from sandbox_battles").fetchone() == ("pending", 0)

    result = scan(server_for())
    assert len(result["breakthroughs"]) == 1
    call = fake_openai.referee_calls()[-1]
    billed = usage_cost(call["usage"]["prompt_tokens"], call["usage"]["prompt_tokens_details"]["cached_tokens"],
                        call["usage"]["completion_tokens"], price_for("gpt-4o", {}))
    model, recorded = db.execute("select model, cost_usd from training_rescores where purpose = 'confirm'").fetchone()
    assert (model, recorded) == ("gpt-4o", billed) and billed > 0
    assert result["cost"] >= float(billed)


def test_the_confirmation_model_is_its_own_setting_and_refused_without_a_price(server_for, psycopg_store, db,
                                                                            fake_openai):
    seed_personas(psycopg_store, 1)
    fake_openai.queue_referee(97, 97)
    server = server_for(REFEREE_CONFIRM_MODEL="mystery-judge")
    train(server)
    response = requests.post(f"{server.url}/api/cron/scout-scan", headers=AUTH, timeout=30)
    assert response.status_code == 500 and "no price for model 'mystery-judge'" in response.json()["message"]
    assert db.execute("select scout_seen_at, scout_lease_until from sandbox_battles").fetchone() == (None, None)
    server = server_for(REFEREE_CONFIRM_MODEL="gpt-4o-mini")
    assert len(scan(server)["breakthroughs"]) == 1
    assert fake_openai.referee_calls()[-1]["model"] == "gpt-4o-mini"


# ---- consistency and drift ----

def test_a_random_referee_shows_a_large_mean_absolute_difference_and_one_drift_alert(server_for, psycopg_store, db,
                                                                                    fake_openai, slack):
    fake_openai.referee_random = random.Random(11)
    seed_personas(psycopg_store, 6)
    server = server_for(REFEREE_AUDIT_SHARE="1", MAX_CONCURRENT_BATTLES="6")
    train(server, 6)
    first = scan(server)
    assert first["audited"] == 6 and first["driftAlerted"] is True
    consistency = view(server, "referee")["consistency"]
    assert consistency["days"] == 7 and consistency["pairs"] == 6
    assert consistency["meanAbsDiff"] > 8, consistency  # two independent random totals differ by ~15 on average
    assert set(consistency["perCriterion"]) == set(referee.CRITERIA)
    assert all(diff > 8 for diff in consistency["perCriterion"].values())
    train(server, 6)
    second = scan(server)
    assert second["audited"] == 6 and second["driftAlerted"] is False, "once a day at most"
    [alert] = drift_alerts(slack)
    assert f"by {consistency['meanAbsDiff']} points" in alert["text"] and "alert above 5" in alert["text"]


def test_a_consistent_referee_raises_no_drift_alert(server_for, psycopg_store, db, fake_openai, slack):
    seed_personas(psycopg_store, 5)
    server = server_for(REFEREE_AUDIT_SHARE="1", REFEREE_DRIFT_ALERT="0.5")
    train(server, 5)
    result = scan(server)
    consistency = view(server, "referee")["consistency"]
    assert (result["audited"], consistency["pairs"], consistency["meanAbsDiff"], consistency["agreement"]) == (
        5, 5, 0, 1)
    assert result["driftAlerted"] is False and drift_alerts(slack) == []


def test_the_audit_share_picks_about_that_share_of_battles(psycopg_store, db):
    seed_personas(psycopg_store, 1)
    insert_battles(db, 400, score=70)
    triage = Queries(psycopg_store).triage_battles(95, Decimal("0.05"), 7)
    assert triage["triaged"] == 400 and triage["candidates"] == 0
    assert 5 <= triage["audits"] <= 40, triage  # 20 expected (binomial sd 4.4)


# ---- reviewers' decisions as labels ----

def test_promote_and_reject_change_the_precision_and_mark_reviewed_does_not(server_for, psycopg_store, db,
                                                                           fake_openai):
    fake_openai.referee_score = 97
    seed_personas(psycopg_store, 3)
    server = server_for(SLACK_WEBHOOK_URL=None)
    train(server, 3)
    ids = [item["battleId"] for item in scan(server)["breakthroughs"]]
    assert len(ids) == 3

    def precision():
        figures = view(server, "referee")["precision"]
        return figures["decisions"], figures["precision"]

    assert precision() == (0, None)
    act(server, "promote", ids[0])
    assert precision() == (1, 1)
    act(server, "reject", ids[1])
    assert precision() == (2, 0.5)
    act(server, "review", ids[2])
    assert precision() == (2, 0.5), "Mark reviewed is neither"
    by_type = view(server, "referee")["precision"]["byPersonaType"]
    assert sum(row["decisions"] for row in by_type) == 2
    assert all(row["precision"] is None for row in by_type), "too few decisions per persona type"


def test_precision_per_persona_type_needs_enough_decisions_and_counts_30_days(psycopg_store, db):
    seed_personas(psycopg_store, 2)  # Skeptical Sam (skeptic), Price Anchor Patricia (price_anchorer)
    for status in ["promoted"] * 4 + ["rejected"]:
        insert_battles(db, 1, score=97, persona="Skeptical Sam", breakthrough=status)
    insert_battles(db, 2, score=97, persona="Price Anchor Patricia", breakthrough="rejected")
    insert_battles(db, 1, score=97, persona="Price Anchor Patricia", breakthrough="promoted", days_ago=31)
    figures = Queries(psycopg_store).referee_report(95, 7, 30, 5)["precision"]
    assert (figures["days"], figures["decisions"], figures["precision"]) == (30, 7, round(4 / 7, 4))
    assert figures["byPersonaType"] == [{"type": "skeptic", "decisions": 5, "precision": 0.8},
                                        {"type": "price_anchorer", "decisions": 2, "precision": None}]


# ---- the calibration check ----

def run_cli(*args, database_url, fake_openai, **env):
    environment = child_env(USE_LOCAL_DB="true", LOCAL_DB_URL=database_url, OPENAI_API_KEY="sk-test",
                            OPENAI_BASE_URL=fake_openai.base_url, **env)
    return subprocess.run([sys.executable, "-m", "lib", *args], cwd=PROJECT_ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def answer_by_transcript(scores: dict):
    """The fake referee answers each calibration transcript with the score given for its id."""
    by_text = {referee.render_transcript(item["transcript"]): scores[item["id"]] for item in referee.load_calibration()}
    return lambda text: by_text[text]


def test_referee_check_reports_what_the_referees_answers_imply(database_url, db, fake_openai):
    items = referee.load_calibration()
    centred = {item["id"]: int(referee.band_centre(item)) for item in items}
    fake_openai.referee_fn = answer_by_transcript(centred)
    result = run_cli("referee-check", "--json", database_url=database_url, fake_openai=fake_openai)
    assert result.returncode == 0, result.stderr
    cost_line = result.stderr.splitlines()[0]
    assert cost_line.startswith(f"referee-check: {len(items)} transcripts scored by gpt-4o: at most $")
    report = json.loads(result.stdout)
    assert (report["spearman"], report["inBand"], report["outliers"], report["scored"]) == (1, 1, [], len(items))
    bound = Decimal(cost_line.split("at most $")[1].split()[0])
    assert 0 < report["cost"] <= bound

    # Reversed: every answer 100 minus the centre. Spearman -1; in band only where that lands inside.
    reversed_scores = {item_id: 100 - score for item_id, score in centred.items()}
    fake_openai.referee_fn = answer_by_transcript(reversed_scores)
    report = json.loads(run_cli("referee-check", "--json", database_url=database_url,
                                fake_openai=fake_openai).stdout)
    outside = [item for item in items if not item["band"][0] <= reversed_scores[item["id"]] <= item["band"][1]]
    assert report["spearman"] == -1
    assert report["inBand"] == round((len(items) - len(outside)) / len(items), 4)
    assert [(o["id"], o["score"]) for o in report["outliers"]] == [(i["id"], reversed_scores[i["id"]]) for i in outside]

    status = json.loads(run_cli("status", database_url=database_url, fake_openai=fake_openai).stdout)
    calibration = status["referee"]["calibration"]
    assert (calibration["model"], calibration["spearman"], calibration["items"]) == ("gpt-4o", -1, len(items))
    assert db.execute("select count(*) from training_referee_calibrations").fetchone()[0] == 2

    text = run_cli("referee-check", database_url=database_url, fake_openai=fake_openai).stdout
    assert text.startswith("referee-check: ") and "Spearman -1.000 against the band centres" in text
    assert f"outside: {outside[0]['id']} scored {reversed_scores[outside[0]['id']]:.2f}" in text


def test_referee_check_has_help():
    result = subprocess.run([sys.executable, "-m", "lib", "referee-check", "--help"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, env=child_env())
    assert result.returncode == 0 and "REFEREE_CHECK_CAP_USD" in result.stdout and "--json" in result.stdout


def test_referee_check_prints_its_bound_and_refuses_past_its_cap(database_url, db, fake_openai):
    result = run_cli("referee-check", database_url=database_url, fake_openai=fake_openai,
                     REFEREE_CHECK_CAP_USD="0.01")
    assert result.returncode == 1
    assert result.stdout.startswith("referee-check: 16 transcripts scored by gpt-4o: at most $")
    assert "more than REFEREE_CHECK_CAP_USD ($0.01)" in result.stderr and result.stderr.count("\n") == 1
    assert fake_openai.referee_calls() == []
    assert db.execute("select count(*) from training_referee_calibrations").fetchone()[0] == 0


# ---- the scout's state, with or without Slack (issue 10.1 and 10.18) ----

def insert_battles(db, count: int, *, score: float, persona: str = "Skeptical Sam", breakthrough: str | None = None,
                   days_ago: int = 0) -> list[str]:
    """Completed battles, oldest first, ended a minute apart."""
    run_id = db.execute("insert into training_runs (trigger, batch_size, cost_cap, deadline_at, status, finished_at) "
                        "values ('cron', 1, 5, now(), 'completed', now()) returning id").fetchone()[0]
    persona_id = db.execute("select id from sandbox_personas where name = %s", (persona,)).fetchone()[0]
    transcript = json.dumps([{"speaker": "closer", "text": "We put it in writing."},
                             {"speaker": "persona", "text": "Then I accept."}])
    scores = json.dumps({name: int(score) for name in referee.CRITERIA})
    return [str(db.execute(
        "insert into sandbox_battles (run_id, persona_id, status, transcript, turns, referee_score, scores, "
        "started_at, ended_at, breakthrough_status, breakthrough_detected_at, confirm_status, scout_seen_at) "
        "values (%s, %s, 'completed', %s, 1, %s, %s, now() - make_interval(days => %s, mins => %s), "
        "now() - make_interval(days => %s, mins => %s), %s, "
        "case when %s::text is null then null else now() - make_interval(days => %s) end, "
        "case when %s::text is null then null else 'confirmed' end, "
        "case when %s::text is null then null else now() end) returning id",
        (run_id, persona_id, transcript, score, scores, days_ago, count - index, days_ago, count - index,
         breakthrough, breakthrough, days_ago, breakthrough, breakthrough)).fetchone()[0])
        for index in range(count)]


def test_without_slack_a_backlog_drains_oldest_first_and_alerts_wait_for_slack(server_for, psycopg_store, db,
                                                                             database_url, fake_openai, slack):
    fake_openai.referee_score = 97
    seed_personas(psycopg_store, 1)
    oldest_first = insert_battles(db, 25, score=97)
    server = server_for(SLACK_WEBHOOK_URL=None)
    first, second, third = scan(server), scan(server), scan(server)
    assert [item["battleId"] for item in first["breakthroughs"]] == oldest_first[:20]
    assert [item["battleId"] for item in second["breakthroughs"]] == oldest_first[20:]
    assert [(r["processed"], r["moments"], r["alerted"], r["backlog"]) for r in (first, second, third)] == [
        (20, 20, 0, 5), (5, 5, 0, 0), (0, 0, 0, 0)]
    assert len(fake_openai.referee_calls()) == 25, "each candidate re-scored once"
    assert len([e for e in fake_openai.log if e["schema"] == "defining_moment"]) == 25, "each moment once"
    rows = db.execute("select confirm_status, defining_moment is not null, slack_status, alerted_at "
                      "from sandbox_battles").fetchall()
    assert set(rows) == {("confirmed", True, "pending", None)}
    state = json.loads(run_cli("status", database_url=database_url, fake_openai=fake_openai).stdout)["scout"]
    assert state["slack"] == {"pending": 25, "sent": 0, "failed": 0} and state["momentsPending"] == 0

    server = server_for()  # Slack configured now: the waiting alerts go out, oldest first, once each
    delivered = [scan(server) for _ in range(3)]
    assert [(r["processed"], r["alerted"], r["moments"]) for r in delivered] == [(20, 20, 0), (5, 5, 0), (0, 0, 0)]
    assert len(trophies(slack)) == 25
    assert len(fake_openai.referee_calls()) == 25


@pytest.mark.parametrize("status, state, posts", [(404, "failed", 1), (410, "failed", 1), (429, "pending", 2)])
def test_a_revoked_webhook_fails_for_good_with_its_reason_and_a_rate_limit_waits(
        server_for, psycopg_store, db, database_url, fake_openai, slack, status, state, posts):
    fake_openai.referee_score = 98
    seed_personas(psycopg_store, 1)
    server = server_for()
    train(server)
    slack.status = status
    first = scan(server)
    scan(server)  # a second scan: a permanent failure is not retried, a rate limit is
    assert f"Slack answered HTTP {status}" in first["errors"][0]
    assert first["slackFailed"] == (1 if state == "failed" else 0)
    assert len(trophies(slack)) == posts, "a permanent failure is never retried"
    row = db.execute("select slack_status, slack_error, alerted_at from sandbox_battles").fetchone()
    assert row[0] == state and row[2] is None
    if state == "failed":
        assert row[1].startswith(f"Slack answered HTTP {status} (permanent failure")
        scout = json.loads(run_cli("status", database_url=database_url, fake_openai=fake_openai).stdout)["scout"]
        assert scout["slack"]["failed"] == 1 and scout["lastSlackFailure"]["reason"] == row[1]
        assert view(server, "breakthroughs")["items"][0]["slackError"] == row[1]


def test_a_failing_extraction_does_not_block_the_alert_and_is_given_up_after_five_attempts(
        server_for, psycopg_store, db, fake_openai, slack):
    fake_openai.referee_score = 97
    fake_openai.moment = {"defining_moment": "", "tactical_snippet": ""}
    seed_personas(psycopg_store, 1)
    server = server_for()
    train(server)
    results = [scan(server) for _ in range(6)]
    assert [r["alerted"] for r in results] == [1, 0, 0, 0, 0, 0], "Slack delivery is independent of extraction"
    assert [r["processed"] for r in results] == [1, 1, 1, 1, 1, 0]
    assert "attempt 5 of 5, given up" in results[4]["errors"][0]
    assert db.execute("select scout_attempts, slack_status from sandbox_battles").fetchone() == (5, "sent")


def test_the_dashboard_referee_view_has_exactly_the_documented_shape(server_for, psycopg_store, db, fake_openai):
    seed_personas(psycopg_store, 2)
    fake_openai.queue_referee(96, 97, 80)  # first battle's score, second's, then one confirmation
    server = server_for(REFEREE_AUDIT_SHARE="1", MAX_CONCURRENT_BATTLES="1")
    train(server, 2)
    scan(server)
    Queries(psycopg_store).record_calibration(model="gpt-4o", simulated=False, spearman=0.9, in_band=0.75, items=16,
                                              cost_usd=Decimal("0.01"), result={})
    body = view(server, "referee")
    assert set(body) == {"consistency", "precision", "unconfirmed", "calibration"}
    assert set(body["consistency"]) == {"days", "pairs", "meanAbsDiff", "agreement", "perCriterion"}
    assert body["consistency"]["pairs"] == 2 and set(body["consistency"]["perCriterion"]) == set(referee.CRITERIA)
    assert all(isinstance(value, float | int) for value in body["consistency"]["perCriterion"].values())
    assert set(body["precision"]) == {"days", "decisions", "precision", "byPersonaType"}
    assert set(body["unconfirmed"][0]) == {"id", "persona", "score", "confirmScore", "reason", "detectedAt"}
    assert set(body["calibration"]) == {"at", "model", "spearman", "inBand", "items"}
    assert (body["calibration"]["spearman"], body["calibration"]["inBand"]) == (0.9, 0.75)


# ---- the referee module on its own ----

@pytest.mark.parametrize("first, second, confirmed", [
    (96, 80, False), (96, 97, True), (95, 95, True), (95, 94, False), (100, 90, False), (99, 92, True),
    (97, 93, True),
])
def test_the_confirmation_rule(first, second, confirmed):
    decision = referee.confirm(Decimal(first), Decimal(second), 95, Decimal(3))
    assert decision.confirmed is confirmed, decision.reason
    if (first, second) == (100, 90):
        assert decision.reason == "re-score 90.00 is below 92 (cutoff 95 minus margin 3)", "mean 95 is not enough"


def test_spearman_with_ties_and_degenerate_cases():
    assert referee.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1
    assert referee.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1
    # A worked example: ranks [1, 2, 3, 4, 5] and [1, 2, 3.5, 5, 3.5] give r = 0.8208.
    assert referee.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == 0.8208
    assert referee.spearman([1, 2, 3], [7, 7, 7]) is None
    assert referee.spearman([1], [2]) is None


def test_a_simulated_rescore_is_a_fresh_draw_close_to_the_first():
    llm = make_llm(Settings.from_env({"LLM_PROVIDER": "simulated"}), latency_scale=0)
    ctx = CallContext.for_cap(Decimal(10), deadline=float("inf"))
    transcript = referee.load_calibration()[9]["transcript"]

    def total(nonce: int) -> float:
        return float(referee.score(llm, ctx, "gpt-4o", transcript, Usage(), nonce=nonce).total)

    first = total(0)
    assert total(0) == first, "the same call, the same answer"
    rescores = [total(nonce) for nonce in range(1, 41)]
    assert rescores == [total(nonce) for nonce in range(1, 41)], "deterministic per nonce"
    differences = [abs(score - first) for score in rescores]
    assert len(set(rescores)) > 10
    assert 0.5 < sum(differences) / len(differences) < 5, differences  # a judge's noise: a few points


def test_the_shipped_calibration_set_spans_poor_to_excellent():
    items = referee.load_calibration()
    assert len(items) >= 15
    centres = sorted(referee.band_centre(item) for item in items)
    assert centres[0] <= 20 and centres[-1] >= 90
    assert sum(1 for c in centres if c < 40) >= 4 and sum(1 for c in centres if 40 <= c < 80) >= 4
    assert sum(1 for c in centres if c >= 80) >= 4
    for item in items:
        assert "\n" not in item["reason"] and len(item["transcript"]) >= 6


def test_a_bad_calibration_file_is_refused_naming_the_item(tmp_path):
    path = tmp_path / "set.json"
    good = referee.load_calibration()[0]
    path.write_text(json.dumps([good, {**good, "id": "bad-band", "band": [80, 20]}]))
    with pytest.raises(referee.CalibrationError, match=r"calibration item 1 \(bad-band\): band must be"):
        referee.load_calibration(path)


@pytest.mark.parametrize("env, message", [
    ({"REFEREE_AUDIT_SHARE": "1.5"}, "REFEREE_AUDIT_SHARE must be a number from 0 to 1, got '1.5'"),
    ({"REFEREE_DRIFT_ALERT": "0"}, "REFEREE_DRIFT_ALERT must be a number from 0.01 to 100"),
    ({"REFEREE_CONFIRM_MARGIN": "lots"}, "REFEREE_CONFIRM_MARGIN must be a number from 0 to 100"),
    ({"REFEREE_RESCORE_CAP_USD": "-1"}, "REFEREE_RESCORE_CAP_USD must be a positive dollar amount"),
    ({"REFEREE_CHECK_CAP_USD": "free"}, "REFEREE_CHECK_CAP_USD must be a dollar amount"),
])
def test_referee_settings_are_validated_naming_the_variable(env, message):
    from lib.config import ConfigError

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)


def test_referee_settings_defaults():
    s = Settings.from_env({"REFEREE_MODEL": "gpt-4.1"})
    assert (s.referee_confirm_model, s.referee_confirm_margin, s.referee_audit_share, s.referee_drift_alert) == (
        "gpt-4.1", 3, Decimal("0.05"), 5)
    assert (s.referee_rescore_cap_usd, s.referee_check_cap_usd) == (Decimal("0.50"), Decimal("1.00"))


def test_the_scout_sql_over_either_transport(store, db):
    """Triage, lease and a confirmation recorded once, over psycopg and over PostgREST."""
    seed_personas(store, 1)
    [battle_id] = insert_battles(db, 1, score=96)
    queries = Queries(store)
    assert queries.triage_battles(95, Decimal(1), 7) == {"triaged": 1, "candidates": 1, "audits": 1}
    lease = queries.lease_scout_work(20, 120, slack=False, max_attempts=5)
    assert lease["due"] == 1 and lease["items"][0]["id"] == battle_id
    rescore = Rescore("gpt-4o", Decimal("97.5"), {name: 97 for name in referee.CRITERIA}, Decimal("0.001234"))
    assert queries.record_confirmation(battle_id, rescore, True, "ok", as_audit=True) is True
    assert queries.record_confirmation(battle_id, rescore, False, "again") is False, "decided once"
    assert queries.record_audit(battle_id, rescore) is False, "the confirmation was the audit"
    queries.release_scout_lease(battle_id)
    assert [item["confirmStatus"] for item in queries.lease_scout_work(20, 120, slack=True, max_attempts=5)["items"]
            ] == ["confirmed"], "its moment and alert are left"
    assert queries.referee_consistency(7, 95)["pairs"] == 1

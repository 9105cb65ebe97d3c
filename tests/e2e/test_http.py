"""The functions over real HTTP: `python -m lib serve` + real PostgreSQL + the fake OpenAI server
+ local receivers for Slack and the scout webhook. Every row of docs/http.md's tables for the cron functions."""
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devtools.fakes.receiver import Receiver
from lib.config import PROJECT_ROOT
from lib.store.queries import Queries
from tests.conftest import (
    BYPASS,
    LOAD_MARGIN_MS,
    SECRET,
    assert_every_battle_ended,
    child_env,
    free_port,
    seed_personas,
)

AUTH = {"Authorization": f"Bearer {SECRET}"}


def test_documented_curl_runs_a_batch_and_chains_the_scout(start_server, psycopg_store, db, slack):
    seed_personas(psycopg_store, 5)
    server = start_server()
    result = subprocess.run(
        ["bash", "-c", 'curl -s -X POST $URL/api/cron/train -H "Authorization: Bearer $CRON_SECRET" '
                       '-H "Content-Type: application/json" -d \'{"batchSize": 5}\''],
        env={**os.environ, "URL": server.url, "CRON_SECRET": SECRET}, capture_output=True, text=True, timeout=60)
    body = json.loads(result.stdout)
    assert body["success"] is True
    batch = body["batch"]
    expected = {"runId", "batchId", "trigger", "requestedBatchSize", "batchSize", "battlesStarted", "battlesCompleted",
                "battlesFailed", "battlesTimedOut", "totalCost", "averageScore", "breakthroughs",
                "costCapReached", "killSwitchTriggered", "timedOut", "durationMs", "scoutNotified", "errors"}
    assert expected <= batch.keys() and batch["batchId"] == batch["runId"]  # batchId: the deprecated alias
    assert (batch["trigger"], batch["requestedBatchSize"], batch["batchSize"], batch["battlesCompleted"]) == (
        "manual", 5, 5, 5)
    assert batch["scoutNotified"] is True and batch["errors"] == []
    assert db.execute("select scout_notified from training_runs").fetchone()[0] is True
    assert_every_battle_ended(db)
    log_lines = [json.loads(line) for line in server.stop().splitlines() if line.startswith("{")]
    battle_lines = [line for line in log_lines if line["event"] == "battle_finished"]
    assert len(battle_lines) == 5 and all(line.get("requestId") for line in battle_lines)
    text = json.dumps(log_lines)
    for secret in (SECRET, "sk-test-key-9f9f", "slacksecret", "Our offer is in writing"):
        assert secret not in text, "no secret and no transcript in the log"


def test_cron_get_runs_a_batch_with_an_optional_batch_size(start_server, psycopg_store, db):
    seed_personas(psycopg_store, 3)
    server = start_server(NEXT_PUBLIC_APP_URL=None)
    response = requests.get(f"{server.url}/api/cron/train?batchSize=2", headers=AUTH, timeout=30)
    assert response.status_code == 200
    batch = response.json()["batch"]
    assert (batch["trigger"], batch["batchSize"], batch["battlesCompleted"]) == ("cron", 2, 2)
    assert batch["scoutNotified"] is False, "no app URL: skipped, with a warning in the log"


def test_batch_size_is_clamped_and_both_values_reported(start_server, psycopg_store):
    seed_personas(psycopg_store, 3)
    server = start_server(MAX_TRAINING_BATCH_SIZE="2", TRAINING_BATCH_SIZE="1", NEXT_PUBLIC_APP_URL=None)
    batch = requests.post(f"{server.url}/api/cron/train", json={"batchSize": 40}, headers=AUTH, timeout=30).json()["batch"]
    assert (batch["requestedBatchSize"], batch["batchSize"]) == (40, 2)


@pytest.mark.parametrize("secret", [None, "", "   "])
def test_unset_cron_secret_is_500_for_both_functions(start_server, secret):
    server = start_server(CRON_SECRET=secret)
    for path in ("/api/cron/train", "/api/cron/scout-scan"):
        response = requests.post(server.url + path, headers=AUTH, timeout=10)
        assert (response.status_code, response.json()) == (500, {"error": "Cron secret not configured"})


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": SECRET},
                                     {"Authorization": f"Basic {SECRET}"}, {"Authorization": f"Bearer {SECRET}x"}])
def test_missing_or_wrong_bearer_is_401(start_server, headers):
    server = start_server()
    for path in ("/api/cron/train", "/api/cron/scout-scan"):
        response = requests.get(server.url + path, headers=headers, timeout=10)
        assert (response.status_code, response.json()) == (401, {"error": "Unauthorized"})


def test_a_stranger_gets_401_even_when_another_setting_is_malformed(start_server):
    server = start_server(KILL_SWITCH_THRESHOLD_USD="free", ADMIN_PASSWORD="dash-pw")
    for path in ("/api/cron/train", "/api/cron/scout-scan"):
        response = requests.post(server.url + path, headers={"Authorization": "Bearer wrong"}, timeout=10)
        assert (response.status_code, response.json()) == (401, {"error": "Unauthorized"})
    page = requests.get(f"{server.url}/admin/training-monitor", auth=("admin", "wrong"), timeout=10)
    assert (page.status_code, page.json()) == (401, {"error": "Unauthorized"})
    allowed = requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=10)
    assert allowed.status_code == 500 and "KILL_SWITCH_THRESHOLD_USD" in allowed.json()["message"]


def test_other_methods_are_405_with_allow(start_server):
    server = start_server()
    response = requests.put(f"{server.url}/api/cron/train", headers=AUTH, timeout=10)
    assert response.status_code == 405 and response.headers["Allow"] == "GET, POST"


@pytest.mark.parametrize("body, message", [
    ("{not json", "Request body is not valid JSON"),
    ("[1, 2]", "Request body must be a JSON object"),
    ('{"batchSize": "5"}', "batchSize must be a positive integer, got \"5\""),
    ('{"batchSize": 0}', "batchSize must be a positive integer, got 0"),
    ('{"batchSize": -3}', "batchSize must be a positive integer, got -3"),
    ('{"batchSize": true}', "batchSize must be a positive integer, got true"),
    ('{"batchSize": 2.5}', "batchSize must be a positive integer, got 2.5"),
])
def test_bad_bodies_are_400_naming_the_problem(start_server, db, body, message):
    server = start_server()
    response = requests.post(f"{server.url}/api/cron/train", data=body, timeout=10,
                             headers={**AUTH, "Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, {"error": message})
    assert db.execute("select count(*) from training_runs").fetchone()[0] == 0


@pytest.mark.parametrize("query", ["abc", "0", "-1", "1.5"])
def test_bad_query_batch_size_is_400(start_server, query):
    server = start_server()
    response = requests.get(f"{server.url}/api/cron/train?batchSize={query}", headers=AUTH, timeout=10)
    assert response.status_code == 400 and response.json()["error"].startswith("batchSize must be a positive")


def test_body_over_64_kib_is_413(start_server, db):
    server = start_server()
    response = requests.post(f"{server.url}/api/cron/train", data=b" " * (64 * 1024 + 1), timeout=10,
                             headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413


def test_paused_is_503_with_the_reason_and_only_a_cost_cap_pause_is_the_kill_switch(start_server, psycopg_store,
                                                                                      db):
    seed_personas(psycopg_store, 1)
    server = start_server()
    db.execute("update training_control set paused = true, paused_by = 'cost_cap', reason = 'Cost cap reached: test'")
    response = requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=10)
    body = response.json()
    assert response.status_code == 503
    assert body["error"] == "Training paused" and body["killSwitchActive"] is True
    assert "Cost cap reached: test" in body["message"]
    Queries(psycopg_store).set_paused(True, "budget review")
    body = requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=10).json()
    assert body["killSwitchActive"] is False and "budget review" in body["message"]


def test_run_in_progress_is_409_with_its_id(start_server, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    run_id, = db.execute("insert into training_runs (trigger, batch_size, cost_cap, deadline_at) "
                         "values ('cron', 1, 5, now() + interval '1 minute') returning id").fetchone()
    server = start_server()
    response = requests.get(f"{server.url}/api/cron/train", headers=AUTH, timeout=10)
    assert (response.status_code, response.json()) == (409, {"error": "Run already in progress", "runId": str(run_id)})
    db.execute("update training_runs set status = 'failed', finished_at = now()")


def test_no_active_persona_is_422(start_server, db):
    server = start_server()
    response = requests.get(f"{server.url}/api/cron/train", headers=AUTH, timeout=10)
    assert response.status_code == 422 and response.json()["error"] == "No active personas found"


@pytest.mark.parametrize("overrides, expected", [
    ({"USE_LOCAL_DB": "maybe"}, "USE_LOCAL_DB must be true or false"),
    ({"USE_LOCAL_DB": None, "VERCEL": "1"}, "Database not configured"),
    ({"OPENAI_API_KEY": None}, "OpenAI API key not configured: set SANDBOX_OPENAI_API_KEY"),
    ({"KILL_SWITCH_THRESHOLD_USD": "free"}, "KILL_SWITCH_THRESHOLD_USD must be a dollar amount"),
    ({"USE_LOCAL_DB": None, "SUPABASE_SANDBOX_URL": "https://x.supabase.co",
      "SANDBOX_SUPABASE_SERVICE_ROLE_KEY": None}, "SANDBOX_SUPABASE_SERVICE_ROLE_KEY"),
])
def test_misconfiguration_is_500_naming_the_setting_and_no_secret(start_server, overrides, expected):
    server = start_server(**overrides)
    response = requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=10)
    assert response.status_code == 500
    assert expected in response.json()["message"]
    for secret in (SECRET, "sk-test-key-9f9f", "slacksecret"):
        assert secret not in response.text
    log = server.stop()
    assert '"status": 500' in log, "the log was read (the request line is in it)"
    for secret in (SECRET, "sk-test-key-9f9f", "slacksecret"):
        assert secret not in log


def test_scout_webhook_carries_the_bearer_and_the_bypass_header(start_server, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    scout = Receiver()
    server = start_server(NEXT_PUBLIC_APP_URL=scout.url, VERCEL_AUTOMATION_BYPASS_SECRET=BYPASS)
    batch = requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=30).json()["batch"]
    scout.stop()
    [call] = scout.received
    assert call["path"] == "/api/cron/scout-scan"
    assert call["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert call["headers"]["x-vercel-protection-bypass"] == BYPASS
    assert batch["scoutNotified"] is True


@pytest.mark.parametrize("scout_status", [None, 500])
def test_scout_down_never_fails_the_batch(start_server, psycopg_store, db, scout_status):
    seed_personas(psycopg_store, 1)
    if scout_status is None:
        app_url = f"http://127.0.0.1:{free_port()}"
    else:
        scout = Receiver(status=scout_status)
        app_url = scout.url
    server = start_server(NEXT_PUBLIC_APP_URL=app_url)
    response = requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=30)
    batch = response.json()["batch"]
    assert response.status_code == 200 and batch["battlesCompleted"] == 1
    assert batch["scoutNotified"] is False
    assert any(error.startswith("Failed to notify Tactical Scout: ") for error in batch["errors"])
    assert db.execute("select scout_notified from training_runs").fetchone()[0] is False
    assert "scout_notify_failed" in server.stop()


def breakthrough_alerts(slack):
    return [body for body in slack.bodies() if body["text"].startswith(":trophy: Breakthrough")]


def test_one_slack_alert_per_breakthrough_across_repeated_and_concurrent_scans(start_server, psycopg_store, db,
                                                                               fake_openai, slack):
    fake_openai.referee_score = 97
    seed_personas(psycopg_store, 4)
    server = start_server(NEXT_PUBLIC_APP_URL=None)
    batch = requests.post(f"{server.url}/api/cron/train", json={"batchSize": 4}, headers=AUTH,
                          timeout=30).json()["batch"]
    assert batch["breakthroughs"] == 4
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: requests.post(f"{server.url}/api/cron/scout-scan", headers=AUTH,
                                                        timeout=30).json(), range(4)))
    results.append(requests.get(f"{server.url}/api/cron/scout-scan", headers=AUTH, timeout=30).json())
    assert sum(r["alerted"] for r in results) == 4, results
    assert sum(len(r["breakthroughs"]) for r in results) == 4
    alerts = breakthrough_alerts(slack)
    assert len(alerts) == 4
    battle_lines = {block["elements"][0]["text"] for alert in alerts for block in alert["blocks"]
                    if block["type"] == "context"}
    assert len(battle_lines) == 4, "four different battles"
    summaries = [b for b in slack.bodies() if "Training batch" in b["text"]]
    assert len(summaries) == 1
    rows = db.execute("select breakthrough_status, defining_moment, alerted_at from sandbox_battles").fetchall()
    assert all(status == "pending_review" and moment and alerted for status, moment, alerted in rows)


def test_with_slack_down_the_alert_arrives_on_the_next_scan(start_server, psycopg_store, db, fake_openai, slack):
    fake_openai.referee_score = 99
    seed_personas(psycopg_store, 1)
    server = start_server(NEXT_PUBLIC_APP_URL=None)
    slack.status = 503
    requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=30)
    first = requests.post(f"{server.url}/api/cron/scout-scan", headers=AUTH, timeout=30).json()
    assert first["alerted"] == 0 and "Slack answered HTTP 503" in first["errors"][0]
    assert db.execute("select alerted_at from sandbox_battles").fetchone()[0] is None
    slack.status = 200
    second = requests.post(f"{server.url}/api/cron/scout-scan", headers=AUTH, timeout=30).json()
    third = requests.post(f"{server.url}/api/cron/scout-scan", headers=AUTH, timeout=30).json()
    assert (second["alerted"], third["alerted"]) == (1, 0)
    assert len(breakthrough_alerts(slack)) == 1


def test_model_text_is_escaped_for_slack_mrkdwn(start_server, psycopg_store, db, fake_openai, slack):
    fake_openai.referee_score = 99
    fake_openai.moment = {"defining_moment": "<!channel> & <https://evil.test|click>",
                          "tactical_snippet": "Use <b>bold</b> claims"}
    seed_personas(psycopg_store, 1)
    server = start_server(NEXT_PUBLIC_APP_URL=None)
    requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=30)
    requests.post(f"{server.url}/api/cron/scout-scan", headers=AUTH, timeout=30)
    [alert] = breakthrough_alerts(slack)
    text = json.dumps(alert)
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; &lt;https://evil.test|click&gt;" in text


def test_auth_failures_load_neither_openai_nor_psycopg():
    script = """
import http.client, importlib.util, json, os, sys, threading
from http.server import ThreadingHTTPServer
spec = importlib.util.spec_from_file_location("train", "api/cron/train.py")
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
server = ThreadingHTTPServer(("127.0.0.1", 0), module.handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
def status(headers):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
    conn.request("POST", "/api/cron/train", headers=headers)
    return conn.getresponse().status
results = {}
os.environ.pop("CRON_SECRET", None)
results["unset"] = status({"Authorization": "Bearer x"})
os.environ["CRON_SECRET"] = "s3cret"
results["wrong"] = status({"Authorization": "Bearer nope"})
results["modules"] = sorted(m for m in ("openai", "psycopg", "requests", "lib.runner") if m in sys.modules)
print(json.dumps(results))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=30, env=child_env())
    assert json.loads(result.stdout.splitlines()[-1]) == {"unset": 500, "wrong": 401, "modules": []}, result.stderr


def log_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_the_response_leaves_by_the_deadline_against_a_hung_llm(start_server, psycopg_store, db, fake_openai):
    """The response leaves within MAX_TRAINING_EXECUTION_TIME_MS + 1 s (docs/http.md): checked on what
    the server recorded, plus LOAD_MARGIN_MS."""
    seed_personas(psycopg_store, 2)
    server = start_server(MAX_TRAINING_EXECUTION_TIME_MS="3000", NEXT_PUBLIC_APP_URL=None)
    # A first batch warms the process (imports, the client, a connection): the measured one starts its
    # battles at once, so they are the ones to hang.
    assert requests.post(f"{server.url}/api/cron/train", json={"batchSize": 1}, headers=AUTH,
                         timeout=60).status_code == 200
    fake_openai.hang_all = True  # from now on, every call hangs for 120 s
    response = requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=60)
    batch = response.json()["batch"]
    assert response.status_code == 200
    assert batch["timedOut"] is True and batch["battlesTimedOut"] == batch["battlesStarted"] >= 1, batch
    assert any(error.startswith("Execution timeout") for error in batch["errors"])
    assert_every_battle_ended(db)
    run_id = batch["batchId"]
    _warm, request_line = [line for line in log_lines(server.stop()) if line["event"] == "request"
                           and line["path"] == "/api/cron/train"]
    assert request_line["ms"] <= 3000 + 1000 + LOAD_MARGIN_MS, request_line
    assert batch["durationMs"] <= 3000 + LOAD_MARGIN_MS, batch["durationMs"]
    last_end, = db.execute("select extract(epoch from max(b.ended_at) - r.started_at) * 1000 from sandbox_battles b "
                           "join training_runs r on r.id = b.run_id where r.id = %s group by r.started_at",
                           (run_id,)).fetchone()
    assert last_end <= 3000 + LOAD_MARGIN_MS, f"a battle ended {last_end} ms after the run started"


def test_unknown_paths_are_404_and_the_dashboard_rewrite_is_routed(start_server):
    server = start_server(ADMIN_PASSWORD="dash-pw")
    for path in ("/api/nothing", "/admin/training-monitorx", "/admin/training-monitor/a/", "/api/cron/train/x"):
        response = requests.get(server.url + path, timeout=10)
        assert (response.status_code, response.json()) == (404, {"error": "Not found"}), path
    for path in ("/admin/training-monitor", "/admin/training-monitor/", "/admin/training-monitor/anything",
                 "/api/admin/training-monitor"):
        refused = requests.get(server.url + path, timeout=10)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic"), path
        page = requests.get(server.url + path, auth=("admin", "dash-pw"), timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), path
        assert "<title>" in page.text


def test_serve_cron_fires_a_schedule_with_the_bearer_as_vercel_cron_does(start_server, capsys):
    from lib.serve import _fire

    server = start_server(NEXT_PUBLIC_APP_URL=None)
    _fire(server.port, "/api/cron/scout-scan", SECRET)
    _fire(server.port, "/api/cron/scout-scan", "wrong")
    fired = capsys.readouterr().out.splitlines()
    assert fired[0].startswith("cron /api/cron/scout-scan: 200") and fired[1].startswith("cron /api/cron/scout-scan: 401")


def test_simulated_runs_are_labelled_in_slack(start_server, psycopg_store, db, slack):
    seed_personas(psycopg_store, 14)
    # Simulated battles are random per battle id; at 80 about 7 in 10 are breakthroughs, so a batch
    # of 10 without one is a one-in-100,000 event.
    server = start_server(NEXT_PUBLIC_APP_URL=None, LLM_PROVIDER="simulated", TRAINING_BATCH_SIZE=10,
                          BATTLE_MAX_TURNS=10, MAX_CONCURRENT_BATTLES=10, OPENAI_API_KEY=None,
                          SCOUT_BREAKTHROUGH_THRESHOLD=80)
    batch = requests.post(f"{server.url}/api/cron/train", headers=AUTH, timeout=60).json()["batch"]
    assert batch["simulated"] is True and batch["breakthroughs"] >= 1
    requests.post(f"{server.url}/api/cron/scout-scan", headers=AUTH, timeout=60)
    texts = [body["text"] for body in slack.bodies()]
    assert any(text.startswith(":crossed_swords: Training batch (simulated)") for text in texts)
    alerts = [text for text in texts if text.startswith(":trophy:")]
    assert alerts and all(text.startswith(":trophy: Breakthrough (simulated LLM)") for text in alerts)

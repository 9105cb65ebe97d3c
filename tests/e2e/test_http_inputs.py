"""Inputs from outside, over real HTTP against `python -m lib serve`: sizes that do not fit, values
that do not parse, bodies whose length is ambiguous (raw sockets), request ids, HEAD, and the
dashboard's arguments. Each is answered with a clear 4xx and leaves nothing half-written; no
input makes a run the caller did not ask for."""
import json
import socket
import uuid

import pytest
import requests

from lib.store.queries import MAX_RECORDED_BATCH_SIZE
from tests.conftest import SECRET, seed_personas

AUTH = {"Authorization": f"Bearer {SECRET}"}
JSON = {**AUTH, "Content-Type": "application/json"}


def runs(db) -> int:
    return db.execute("select count(*) from training_runs").fetchone()[0]


def raw_request(port: int, data: bytes) -> tuple[int, dict, bytes]:
    """Sends bytes as they are and reads the answer to the end (the server closes: HTTP/1.0)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


# ---- 4: sizes past the SQL integer are clamped like any other ----

@pytest.mark.parametrize("how", ["body", "query"])
def test_a_batch_size_past_2_to_the_31_is_clamped_and_recorded_saturated(start_server, psycopg_store, db, how):
    seed_personas(psycopg_store, 3)
    server = start_server(MAX_TRAINING_BATCH_SIZE="2", NEXT_PUBLIC_APP_URL=None)
    if how == "body":
        response = requests.post(f"{server.url}/api/cron/train", json={"batchSize": 2**31}, headers=AUTH, timeout=60)
    else:
        response = requests.get(f"{server.url}/api/cron/train?batchSize={'9' * 30}", headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    batch = response.json()["batch"]
    assert (batch["requestedBatchSize"], batch["batchSize"], batch["battlesStarted"]) == (MAX_RECORDED_BATCH_SIZE, 2, 2)
    assert db.execute("select requested_batch_size, batch_size from training_runs").fetchone() == (2**31 - 1, 2)


# ---- 5: values that do not parse are 400s naming the problem ----

@pytest.mark.parametrize("body, message", [
    ('{"batchSize": ' + "1" * 5000 + "}", "Request body has an integer of more than 100 digits"),
    ('{"batchSize": 1, "x": ' + "[" * 30000 + "]" * 30000 + "}", "Request body is nested too deeply (at most 32 levels)"),
    ('{"batchSize": 1, "x": ' + "[" * 40 + "]" * 40 + "}", "Request body is nested too deeply (at most 32 levels)"),
    ('{"batchSize": 1e400}', "batchSize must be a positive integer, got Infinity"),
    (b'{"batchSize": "\xff"}', "Request body is not valid JSON"),
])
def test_bodies_that_cannot_be_read_are_400(start_server, db, body, message):
    server = start_server()
    response = requests.post(f"{server.url}/api/cron/train", data=body, headers=JSON, timeout=30)
    assert (response.status_code, response.json()) == (400, {"error": message})
    assert runs(db) == 0


@pytest.mark.parametrize("query, message", [
    ("²", "batchSize must be a positive integer, got '²'"),
    ("１２", "batchSize must be a positive integer, got '１２'"),
    ("+3", "batchSize must be a positive integer, got '+3'"),
    ("000", "batchSize must be a positive integer, got '000'"),
    ("1" * 5000, "batchSize must be a positive integer of at most 100 digits"),
])
def test_query_sizes_that_are_not_plain_digits_are_400(start_server, db, query, message):
    server = start_server()
    response = requests.get(f"{server.url}/api/cron/train", params={"batchSize": query}, headers=AUTH, timeout=30)
    assert (response.status_code, response.json()) == (400, {"error": message})
    assert runs(db) == 0


# ---- 6: a body of ambiguous length is refused, never read as empty (a default batch) ----

BODY = b'{"batchSize": 1}'


@pytest.mark.parametrize("framing, status, message", [
    (b"Content-Length: -5\r\n", 400, "Invalid Content-Length header"),
    (b"Content-Length: +16\r\n", 400, "Invalid Content-Length header"),
    (b"Content-Length: 16\r\nContent-Length: 2\r\n", 400, "Conflicting Content-Length headers"),
    (b"Transfer-Encoding: chunked\r\n", 411, "Content-Length required"),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 16\r\n", 400,
     "Both Transfer-Encoding and Content-Length headers"),
])
def test_ambiguous_body_lengths_are_refused(start_server, psycopg_store, db, framing, status, message):
    seed_personas(psycopg_store, 1)
    server = start_server(NEXT_PUBLIC_APP_URL=None)
    body = b"10\r\n" + BODY + b"\r\n0\r\n\r\n" if b"chunked" in framing else BODY
    answer_status, _, answer = raw_request(server.port, (
        f"POST /api/cron/train HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SECRET}\r\n"
        "Content-Type: application/json\r\n").encode() + framing + b"\r\n" + body)
    assert answer_status == status and json.loads(answer)["error"].startswith(message), answer
    assert runs(db) == 0, "no batch the caller did not ask for"


def test_a_repeated_identical_content_length_is_one_length(start_server, psycopg_store, db):
    seed_personas(psycopg_store, 2)
    server = start_server(NEXT_PUBLIC_APP_URL=None)
    status, _, answer = raw_request(server.port, (
        f"POST /api/cron/train HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SECRET}\r\n"
        "Content-Length: 16\r\nContent-Length: 16\r\n\r\n").encode() + BODY)
    assert status == 200 and json.loads(answer)["batch"]["battlesStarted"] == 1


# ---- 10: request ids ----

def test_a_safe_vercel_id_is_the_request_id_and_anything_else_is_replaced(start_server):
    server = start_server()
    vercel_id = "iad1::fra1::abcde-1700000000000-0123456789ab"
    echoed = requests.get(f"{server.url}/api/cron/train", headers={"x-vercel-id": vercel_id}, timeout=10)
    assert echoed.status_code == 401 and echoed.headers["x-request-id"] == vercel_id
    for hostile in ("<script>alert(1)</script>", "a" * 81, "id with spaces", "é"):
        answer = requests.get(f"{server.url}/api/cron/train", headers={"x-vercel-id": hostile.encode()}, timeout=10)
        request_id = answer.headers["x-request-id"]
        assert request_id != hostile and len(request_id) == 12 and int(request_id, 16) >= 0, request_id
    log = server.stop()
    assert "<script>" not in log and vercel_id in log


# ---- HEAD: answered as GET without the body where reading changes nothing ----

def test_head_is_the_dashboard_get_without_a_body_and_405_on_the_cron_functions(start_server, db):
    server = start_server(ADMIN_PASSWORD="dash-pw")
    page = requests.get(f"{server.url}/admin/training-monitor", auth=("admin", "dash-pw"), timeout=10)
    head = requests.head(f"{server.url}/admin/training-monitor", auth=("admin", "dash-pw"), timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"] == page.headers["Content-Type"]
    assert int(head.headers["Content-Length"]) > 1000
    assert requests.head(f"{server.url}/admin/training-monitor", timeout=10).status_code == 401
    for path in ("/api/cron/train", "/api/cron/scout-scan"):
        refused = requests.head(server.url + path, headers=AUTH, timeout=10)
        assert refused.status_code == 405 and refused.headers["Allow"] == "GET, POST" and refused.content == b""
    assert requests.head(f"{server.url}/api/nothing", timeout=10).status_code == 404
    assert runs(db) == 0


# ---- 8: the dashboard's arguments ----

PASSWORD = "dash-pw-8"


@pytest.fixture
def dashboard(start_server):
    server = start_server(ADMIN_PASSWORD=PASSWORD, NEXT_PUBLIC_APP_URL=None)
    session = requests.Session()
    session.auth = ("admin", PASSWORD)
    session.headers.update({"Origin": server.url, "Content-Type": "application/json"})
    session.base = f"{server.url}/admin/training-monitor"
    return session


def breakthrough(db) -> str:
    db.execute("insert into sandbox_personas (name, persona_type, system_prompt) values ('P', 't', 'You are P.')")
    run_id = db.execute("insert into training_runs (trigger, batch_size, cost_cap, deadline_at) "
                        "values ('cron', 1, 5, now() + interval '1 minute') returning id").fetchone()[0]
    return db.execute("insert into sandbox_battles (run_id, persona_id, breakthrough_status, tactical_snippet) "
                      "select %s, id, 'pending_review', 'Name the repair costs.' from sandbox_personas "
                      "returning id::text", (run_id,)).fetchone()[0]


@pytest.mark.parametrize("cursor", ["notadate", "2026-13-01T00:00:00Z", "2026-W48-6", "1' or '1'='1"])
def test_a_feed_cursor_that_is_not_a_timestamp_is_400(dashboard, db, cursor):
    response = dashboard.get(dashboard.base, params={"view": "feed", "afterUpdatedAt": cursor,
                                                     "afterId": str(uuid.uuid4())}, timeout=10)
    assert response.status_code == 400 and response.json()["error"].startswith("afterUpdatedAt must be an ISO 8601")


@pytest.mark.parametrize("offset, status", [("+16:00", 400), ("-16:00", 400), ("+15:59", 200), ("-15:59", 200)])
def test_a_feed_cursor_offset_postgresql_cannot_hold_is_400(dashboard, db, offset, status):
    response = dashboard.get(dashboard.base, params={"view": "feed", "afterUpdatedAt": f"2026-11-28T14:30:00{offset}",
                                                     "afterId": str(uuid.uuid4())}, timeout=10)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"].startswith("afterUpdatedAt must be an ISO 8601 timestamp")


@pytest.mark.parametrize("version_id", [2**31, 2**31 + 5, 10**40])
def test_a_version_id_past_the_sql_integer_is_400_not_schema_not_applied(dashboard, db, version_id):
    response = dashboard.post(dashboard.base, params={"action": "rollback"}, data=json.dumps({"versionId": version_id}),
                              timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == (f"versionId {version_id} is past the largest version number (2147483647): "
                                        "no such version")


@pytest.mark.parametrize("reason, problem", [("lunch\u0000", "a NUL character (U+0000)"),
                                             ("\udc00lunch", "a lone surrogate")])
def test_a_pause_reason_the_database_cannot_store_is_400_and_nothing_is_paused(dashboard, db, reason, problem):
    response = dashboard.post(dashboard.base, params={"action": "pause"}, data=json.dumps({"reason": reason}),
                              timeout=10)
    assert response.status_code == 400 and response.json()["error"].startswith(f"reason contains {problem}")
    assert db.execute("select paused from training_control").fetchone()[0] is False


def test_the_cursor_the_feed_returns_is_accepted(dashboard, db):
    breakthrough(db)
    cursor = dashboard.get(dashboard.base, params={"view": "feed"}, timeout=10).json()["cursor"]
    again = dashboard.get(dashboard.base, params={"view": "feed", "afterUpdatedAt": cursor["updatedAt"],
                                                  "afterId": cursor["id"]}, timeout=10)
    assert again.status_code == 200 and again.json()["battles"] == []


@pytest.mark.parametrize("tactic, message", [
    (123, "tacticText must be a string"),
    (["Name the costs."], "tacticText must be a string"),
    ({"text": "x"}, "tacticText must be a string"),
    ("", "tacticText is empty"),
    ("  \n ", "tacticText is empty"),
    ("x" * 1001, "tacticText is 1001 characters long: the limit is 1000"),
    ("x" * 61_000, "tacticText is 61000 characters long: the limit is 1000"),
    ("Name the\u0000 costs.", "tacticText contains a NUL character (U+0000)"),
    ("Name the costs.\ud800", "tacticText contains a lone surrogate"),
])
def test_a_bad_tactic_is_400_and_nothing_is_promoted(dashboard, db, tactic, message):
    battle_id = breakthrough(db)
    response = dashboard.post(dashboard.base, params={"action": "promote"},
                              data=json.dumps({"battleId": battle_id, "tacticText": tactic}), timeout=10)
    assert response.status_code == 400 and response.json()["error"].startswith(message), response.text
    assert db.execute("select count(*) from sandbox_tactics").fetchone()[0] == 0
    assert db.execute("select breakthrough_status from sandbox_battles").fetchone()[0] == "pending_review"


def test_a_tactic_of_1000_characters_or_the_snippet_is_promoted(dashboard, db):
    battle_id = breakthrough(db)
    response = dashboard.post(dashboard.base, params={"action": "promote"},
                              data=json.dumps({"battleId": battle_id, "tacticText": "y" * 1000, "direct": True}),
                              timeout=10)
    assert response.status_code == 200, response.text
    other = breakthrough_for_another_persona(db)
    response = dashboard.post(dashboard.base, params={"action": "promote"},
                              data=json.dumps({"battleId": other, "tacticText": None}), timeout=10)
    assert response.status_code == 200, response.text
    assert [row[0] for row in db.execute("select tactic_text from sandbox_tactics order by promoted_at")] == [
        "y" * 1000, "Name the repair costs."]


def breakthrough_for_another_persona(db) -> str:
    run_id = db.execute("select id from training_runs").fetchone()[0]
    persona_id = db.execute("insert into sandbox_personas (name, persona_type, system_prompt) "
                            "values ('Q', 't', 'You are Q.') returning id").fetchone()[0]
    return db.execute("insert into sandbox_battles (run_id, persona_id, breakthrough_status, tactical_snippet) "
                      "values (%s, %s, 'pending_review', 'Name the repair costs.') returning id::text",
                      (run_id, persona_id)).fetchone()[0]

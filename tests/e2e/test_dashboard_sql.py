"""The dashboard's SQL: what the health strip and the run chart say, the review order, and that the
polls made every 2 seconds read indexes, not the whole battle table."""
import json
import time

import psycopg
import requests

from devtools.seeding import seed_battles
from lib.store.queries import Queries
from tests.conftest import seed_personas

PASSWORD = "dash-sql-pw-71"


def run(db, *, status="completed", cost=0.05, cap=5, hours_ago=1.0, score=None, kill=False) -> str:
    return str(db.execute(
        "insert into training_runs (trigger, status, batch_size, total_cost, cost_cap, average_score, "
        "kill_switch_triggered, deadline_at, started_at, finished_at) "
        "values ('cron', %s, 5, %s, %s, %s, %s, now(), now() - make_interval(secs => %s * 3600), "
        "case when %s = 'running' then null else now() - make_interval(secs => %s * 3600 - 30) end) returning id",
        (status, cost, cap, score, kill, hours_ago, status, hours_ago)).fetchone()[0])


def battle(db, run_id, *, status="completed", cost=0.01, score=None, hours_ago=1.0, breakthrough=None,
           detected_hours_ago=None, persona="Skeptical Sam") -> str:
    persona_id = db.execute("select id from sandbox_personas where name = %s", (persona,)).fetchone()[0]
    return str(db.execute(
        "insert into sandbox_battles (run_id, persona_id, status, referee_score, cost_usd, started_at, ended_at, "
        "breakthrough_status, breakthrough_detected_at) values (%s, %s, %s, %s, %s, "
        "now() - make_interval(secs => %s * 3600), case when %s = 'running' then null else now() end, %s, "
        "now() - make_interval(secs => %s * 3600)) returning id",
        (run_id, persona_id, status, score, cost, hours_ago, status, breakthrough,
         detected_hours_ago if detected_hours_ago is not None else hours_ago)).fetchone()[0])


def test_health_sums_spend_scores_and_outcomes_for_today_and_the_week(psycopg_store, db):
    seed_personas(psycopg_store, 2)
    db.execute("set time zone 'UTC'")
    hours_today = min(1.0, db.execute("select (extract(epoch from now() - date_trunc('day', now())) / 3600)::float8"
                                      ).fetchone()[0] * 0.5)
    today = run(db, hours_ago=hours_today, cost=0.03)
    battle(db, today, cost=0.01, score=80, hours_ago=hours_today)
    battle(db, today, cost=0.01, score=90, hours_ago=hours_today)
    battle(db, today, status="killed", cost=0.005, hours_ago=hours_today)
    battle(db, today, status="failed", cost=0.005, hours_ago=hours_today)
    earlier = run(db, hours_ago=24 * 3, cost=0.02)
    battle(db, earlier, cost=0.02, score=40, hours_ago=24 * 3, breakthrough="pending_review")
    old = run(db, hours_ago=24 * 10)
    battle(db, old, cost=1.00, score=10, hours_ago=24 * 10)
    running = run(db, status="running", hours_ago=0.01, cost=0)
    battle(db, running, status="running", cost=0.002, hours_ago=0.01)

    health = Queries(psycopg_store).dashboard_health()
    assert health["today"] == {"battles": 5, "spend": 0.032, "averageScore": 85.0, "scored": 2, "completed": 2,
                               "killed": 1, "failed": 1, "timedOut": 0}
    assert health["week"] == {"battles": 6, "spend": 0.052, "averageScore": 70.0, "scored": 3}
    assert health["pendingReviews"] == 1
    assert health["lastRun"]["id"] == today and health["lastRun"]["cost"] == 0.03
    assert [r["id"] for r in health["running"]] == [running]
    assert health["running"][0]["cost"] == 0.002 and health["running"][0]["battles"] == 1, "a live run's figures so far"
    assert health["personas"] == {"active": 2, "total": 2} and health["paused"] is False


def test_the_run_chart_takes_a_range_and_gives_each_run_its_cost_and_cap(psycopg_store, db):
    seed_personas(psycopg_store, 1)
    recent = run(db, hours_ago=2, cost=0.11, cap=0.25, score=72)
    killed = run(db, status="killed", hours_ago=30, cost=0.01, cap=0.01, kill=True)
    run(db, hours_ago=24 * 20, cost=0.5)
    queries = Queries(psycopg_store)
    day = queries.dashboard_runs(24)
    assert [r["id"] for r in day["runs"]] == [recent]
    week = queries.dashboard_runs(24 * 7)["runs"]
    assert [r["id"] for r in week] == [killed, recent], "oldest first"
    assert week[0]["costCapReached"] is True and week[0]["killSwitchTriggered"] is True and week[0]["cost"] == 0.01 and week[0]["costCap"] == 0.01
    assert len(queries.dashboard_runs(24 * 30)["runs"]) == 3


def test_pending_breakthroughs_come_first_then_newest_first_within_each_group(psycopg_store, db):
    """Broken before: the outer jsonb_agg re-sorted by date, so promoted cards sat above pending ones."""
    seed_personas(psycopg_store, 1)
    run_id = run(db)
    pending = [battle(db, run_id, score=96, breakthrough="pending_review", detected_hours_ago=10 + i)
               for i in range(15)]
    decided = [battle(db, run_id, score=97, breakthrough=status, detected_hours_ago=i)
               for i, status in enumerate(("promoted", "rejected", "reviewed"))]
    items = Queries(psycopg_store).breakthroughs()["items"]
    assert [item["id"] for item in items] == pending + decided


def test_the_polls_read_indexes_not_every_battle(psycopg_store, database_url, db):
    """Broken before: the feed materialised every battle with its transcript on every poll."""
    seed_personas(psycopg_store, 4)
    started = time.monotonic()
    seed_battles(database_url, 20_000, transcript_chars=200)
    assert time.monotonic() - started < 10, "seeding must stay fast"
    latest = db.execute("select updated_at, id from sandbox_battles order by updated_at desc, id desc limit 1").fetchone()
    with psycopg.connect(database_url) as conn:  # one transaction: pg_stat_xact_* counts only its own scans
        first = conn.execute("select training_dashboard_feed()").fetchone()[0]
        unchanged = conn.execute("select training_dashboard_feed(%s, %s)", latest).fetchone()[0]
        conn.execute("select training_dashboard_health()")
        conn.execute("select training_dashboard_breakthroughs()")
        conn.execute("select training_dashboard_runs(168)")
        scans = conn.execute("select seq_scan, idx_scan from pg_stat_xact_user_tables "
                             "where relname = 'sandbox_battles'").fetchone()
    assert len(first["battles"]) == 50 and unchanged == {"battles": [], "cursor": None}
    assert scans[0] == 0, f"{scans[0]} sequential scans of sandbox_battles"
    assert scans[1] > 0


def test_a_warm_dashboard_function_keeps_its_database_connection(start_server, psycopg_store, db):
    """Broken before: each dashboard request opened (and closed) a database connection."""
    seed_personas(psycopg_store, 1)
    server = start_server(ADMIN_PASSWORD=PASSWORD, NEXT_PUBLIC_APP_URL=None)
    url = f"{server.url}/admin/training-monitor"

    def backends() -> set:
        return set(db.execute("select pid, backend_start from pg_stat_activity where datname = current_database() "
                              "and backend_type = 'client backend' and pid <> pg_backend_pid()").fetchall())

    before = backends() - set()
    assert requests.get(url, params={"view": "health"}, auth=("admin", PASSWORD), timeout=10).status_code == 200
    after_first = backends() - before
    assert len(after_first) == 1, "the function's connection stays open after its request"
    for view in ("feed", "health", "breakthroughs", "personas", "runs"):
        assert requests.get(url, params={"view": view}, auth=("admin", PASSWORD), timeout=10).status_code == 200
    assert backends() - before == after_first, "later requests use the same connection"


def test_health_view_adds_the_cap_and_the_next_scheduled_run(start_server, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    server = start_server(ADMIN_PASSWORD=PASSWORD, NEXT_PUBLIC_APP_URL=None, KILL_SWITCH_THRESHOLD_USD="2.50")
    health = requests.get(f"{server.url}/admin/training-monitor", params={"view": "health"},
                          auth=("admin", PASSWORD), timeout=10).json()
    assert health["costCap"] == 2.5
    assert health["nextRun"]["schedule"] == "*/30 * * * *"
    minute = health["nextRun"]["at"][14:16]
    assert minute in ("00", "30"), json.dumps(health["nextRun"])
    bad = requests.get(f"{server.url}/admin/training-monitor", params={"view": "runs", "range": "1y"},
                       auth=("admin", PASSWORD), timeout=10)
    assert bad.status_code == 400 and "24h" in bad.json()["error"]
    cursor = requests.get(f"{server.url}/admin/training-monitor", params={"view": "feed", "afterUpdatedAt": "yesterday"},
                          auth=("admin", PASSWORD), timeout=10)
    assert cursor.status_code == 400 and "afterUpdatedAt" in cursor.json()["error"]

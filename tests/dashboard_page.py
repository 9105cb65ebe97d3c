"""What the dashboard's browser tests share: headless Chromium (Debian's, driven by playwright), the
dashboard under `python -m lib serve`, a page that must stay offline and error-free, and rows to
show (tests/e2e/test_dashboard.py, tests/e2e/test_dashboard_charts.py)."""
import json
import os
import re
import time
from pathlib import Path

import pytest

from lib.config import PROJECT_ROOT
from lib.store.psycopg import PsycopgStore

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "dash-pw-5c2e"
ARTIFACTS = PROJECT_ROOT / "artifacts"
SERIOUS = ("serious", "critical")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        message = "Debian's chromium is missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture
def dashboard(start_server):
    server = start_server(ADMIN_PASSWORD=PASSWORD, NEXT_PUBLIC_APP_URL=None)
    server.page_url = f"{server.url}/admin/training-monitor"
    return server


class Requests:
    """The page's requests to the dashboard, in order: (view or action, query, monotonic time, failed)."""

    def __init__(self, page):
        self.log = []
        page.on("request", lambda request: self._add(request, False))
        page.on("requestfailed", lambda request: self._add(request, True))

    def _add(self, request, failed):
        query = dict(re.findall(r"[?&]([^=&]+)=([^&]*)", request.url))
        name = query.get("view") or query.get("action")
        if name:
            self.log.append((name, query, time.monotonic(), failed))

    def count(self, name, failed=None):
        return sum(1 for entry in self.log if entry[0] == name and (failed is None or entry[3] == failed))


def new_page(browser, dashboard, viewport=None):
    context = browser.new_context(http_credentials={"username": "admin", "password": PASSWORD},
                                  viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    page.errors, page.foreign = [], []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith((dashboard.url, "data:"))
            else page.foreign.append(request.url))
    page.requests = Requests(page)
    return context, page


@pytest.fixture
def page(browser, dashboard):
    context, page = new_page(browser, dashboard)
    yield page
    context.close()
    assert page.errors == [], page.errors
    assert page.foreign == [], f"the page must work offline, but it fetched {page.foreign}"


@pytest.fixture
def restore_schema(database_url):
    """For tests that break the schema on purpose: it is whole again afterwards."""
    yield
    store = PsycopgStore(database_url)
    store.migrate()
    store.close()


def loaded(page, url):
    page.goto(url)
    page.wait_for_selector("body[data-loaded='true']")


def insert_battle(db, *, persona="Skeptical Sam", transcript=None, score=None, status="completed",
                  breakthrough=None, snippet=None, moment=None, scores=None, feedback=None) -> str:
    run_id = db.execute("insert into training_runs (trigger, batch_size, cost_cap, deadline_at, status, finished_at) "
                        "values ('cron', 1, 5, now(), 'completed', now()) returning id").fetchone()[0]
    persona_id = db.execute("select id from sandbox_personas where name = %s", (persona,)).fetchone()[0]
    return str(db.execute(
        "insert into sandbox_battles (run_id, persona_id, status, transcript, turns, referee_score, ended_at, "
        "breakthrough_status, breakthrough_detected_at, tactical_snippet, defining_moment, seller_agreed, scores, "
        "referee_feedback) "
        "values (%s, %s, %s, %s, 1, %s, now(), %s, case when %s::text is null then null else clock_timestamp() end, "
        "%s, %s, true, %s, %s) returning id",
        (run_id, persona_id, status, json.dumps(transcript or [{"speaker": "closer", "text": "Hello"},
                                                               {"speaker": "persona", "text": "Hi"}]),
         score, breakthrough, breakthrough, snippet, moment, json.dumps(scores) if scores else None,
         feedback)).fetchone()[0])


def insert_run(db, *, cost, cap, hours_ago, status="completed", score=None, kill=False) -> str:
    return str(db.execute(
        "insert into training_runs (trigger, status, batch_size, battles_started, total_cost, cost_cap, average_score, "
        "kill_switch_triggered, deadline_at, started_at, finished_at) values ('cron', %s, 5, 5, %s, %s, %s, %s, now(), "
        "now() - make_interval(secs => %s * 3600), now() - make_interval(secs => %s * 3600 - 40)) returning id",
        (status, cost, cap, score, kill, hours_ago, hours_ago)).fetchone()[0])

"""The training monitor in a real headless Chromium (Debian's, driven by playwright)."""
import json
import os
import re
import uuid
from pathlib import Path

import pytest
import requests

from lib.app import make_llm
from lib.runner import run_batch
from lib.config import PROJECT_ROOT
from tests.conftest import seed_personas

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "dash-pw-5c2e"
ARTIFACTS = PROJECT_ROOT / "artifacts"


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


@pytest.fixture
def page(browser, dashboard):
    context = browser.new_context(http_credentials={"username": "admin", "password": PASSWORD},
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors, foreign = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith((dashboard.url, "data:"))
            else foreign.append(request.url))
    yield page
    context.close()
    assert errors == [], errors
    assert foreign == [], f"the page must work offline, but it fetched {foreign}"


def insert_battle(db, *, persona="Skeptical Sam", transcript=None, score=None, status="completed",
                  breakthrough=None, snippet=None, moment=None) -> str:
    run_id = db.execute("insert into training_runs (trigger, batch_size, cost_cap, deadline_at, status, finished_at) "
                        "values ('cron', 1, 5, now(), 'completed', now()) returning id").fetchone()[0]
    persona_id = db.execute("select id from sandbox_personas where name = %s", (persona,)).fetchone()[0]
    return str(db.execute(
        "insert into sandbox_battles (run_id, persona_id, status, transcript, turns, referee_score, ended_at, "
        "breakthrough_status, breakthrough_detected_at, tactical_snippet, defining_moment, seller_agreed) "
        "values (%s, %s, %s, %s, 1, %s, now(), %s, case when %s::text is null then null else now() end, %s, %s, true) "
        "returning id",
        (run_id, persona_id, status, json.dumps(transcript or [{"speaker": "closer", "text": "Hello"},
                                                               {"speaker": "persona", "text": "Hi"}]),
         score, breakthrough, breakthrough, snippet, moment)).fetchone()[0])


def test_a_new_battle_appears_in_the_feed_without_a_reload(page, dashboard, psycopg_store, db):
    seed_personas(psycopg_store, 3)
    insert_battle(db, persona="Skeptical Sam", score=70)
    page.goto(dashboard.page_url)
    page.wait_for_selector("#feed tbody tr")
    assert page.locator("#feed tbody tr").count() == 1
    page.evaluate("window.__sameDocument = true")
    insert_battle(db, persona="Grieving Grace", score=88.5)
    page.wait_for_selector("#feed tbody tr:has-text('Grieving Grace')", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True, "the page was not reloaded"
    assert "88.5" in page.inner_text("#feed")


def test_promote_writes_the_tactic_and_the_next_closer_prompt_uses_it(page, dashboard, psycopg_store, db,
                                                                     make_settings, fake_openai):
    seed_personas(psycopg_store, 2)
    battle_id = insert_battle(db, score=97, breakthrough="pending_review", moment="We put it in writing.",
                              snippet="Offer the written guarantee before the price.")
    page.goto(dashboard.page_url)
    page.wait_for_selector(f".card[data-id='{battle_id}']")
    assert page.inner_text("#pending") == "1"
    page.locator(f".card[data-id='{battle_id}'] button:has-text('Promote')").click()
    page.wait_for_selector(f".card[data-id='{battle_id}'] .tag:has-text('promoted')")
    assert page.inner_text("#pending") == "0"
    tactic = db.execute("select tactic_text, battle_id from sandbox_tactics").fetchone()
    assert tactic == ("Offer the written guarantee before the price.", uuid.UUID(battle_id))
    # The promotion made a candidate: in a batch of 2, one persona battles the active version and
    # the candidate, whose closer prompt has the tactic.
    settings = make_settings(TRAINING_BATCH_SIZE=2)
    run_batch(settings, psycopg_store, make_llm(settings), trigger="manual")
    closer_prompts = {e["messages"][0]["content"] for e in fake_openai.log if e["model"] == settings.closer_model
                      and e["schema"] is None}
    assert len(closer_prompts) == 2
    assert sum("Offer the written guarantee before the price." in prompt for prompt in closer_prompts) == 1


def test_mark_reviewed_and_reject(page, dashboard, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    reviewed = insert_battle(db, score=96, breakthrough="pending_review", snippet="A")
    rejected = insert_battle(db, score=95, breakthrough="pending_review", snippet="B")
    page.goto(dashboard.page_url)
    page.wait_for_selector(f".card[data-id='{rejected}']")
    page.locator(f".card[data-id='{reviewed}'] button:has-text('Mark reviewed')").click()
    page.wait_for_selector(f".card[data-id='{reviewed}'] .tag:has-text('reviewed')")
    page.locator(f".card[data-id='{rejected}'] button:has-text('Reject')").click()
    page.wait_for_selector(f".card[data-id='{rejected}'] .tag:has-text('rejected')")
    statuses = dict(db.execute("select id::text, breakthrough_status from sandbox_battles").fetchall())
    assert statuses == {reviewed: "reviewed", rejected: "rejected"}


def test_model_text_is_shown_as_text_and_runs_nothing(page, dashboard, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    hostile = [{"speaker": "closer", "text": "<script>window.pwned = 1</script>"},
               {"speaker": "persona", "text": '<img src=x onerror="window.pwned = 2">'}]
    battle_id = insert_battle(db, transcript=hostile, score=99, breakthrough="pending_review",
                              moment="<b onmouseover=alert(1)>bold</b>", snippet="<svg onload=alert(2)>")
    page.goto(dashboard.page_url)
    page.wait_for_selector(f".card[data-id='{battle_id}']")
    page.locator(f"#feed tr[data-id='{battle_id}']").click()
    page.wait_for_selector("#transcript[open]")
    text = page.inner_text("#transcript-body")
    assert "<script>window.pwned = 1</script>" in text and '<img src=x onerror="window.pwned = 2">' in text
    assert "<svg onload=alert(2)>" in page.inner_text("#breakthroughs")
    assert page.locator("#transcript-body img, #transcript-body script, #breakthroughs svg").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.pwned") is None


def test_pause_and_resume_from_the_page(page, dashboard, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    page.goto(dashboard.page_url)
    page.wait_for_selector("#control-state:has-text('Active')")
    page.once("dialog", lambda dialog: dialog.accept("Budget review"))
    page.click("#pause")
    page.wait_for_selector("#control-state:has-text('Paused')")
    assert "Budget review" in page.inner_text("#control-reason")
    assert db.execute("select paused from training_control").fetchone()[0] is True
    page.click("#resume")
    page.wait_for_selector("#control-state:has-text('Active')")
    assert db.execute("select paused from training_control").fetchone()[0] is False


def test_personas_are_sortable_and_runs_are_charted_then_a_screenshot_is_saved(page, dashboard, psycopg_store, db,
                                                                              make_settings):
    seed_personas(psycopg_store, 4)
    for name, score in (("Skeptical Sam", 60), ("Skeptical Sam", 80), ("Grieving Grace", 90)):
        insert_battle(db, persona=name, score=score)
    page.goto(dashboard.page_url)
    page.wait_for_selector("#personas tbody tr")
    page.wait_for_selector("#runs-chart svg")
    page.click("#personas th[data-sort='averageScore']")
    first = page.locator("#personas tbody tr").first.get_attribute("data-name")
    assert first == "Grieving Grace"
    assert page.locator("#personas tr[data-name='Skeptical Sam'] polyline").count() == 1
    assert page.locator("#runs-chart rect").count() == 3
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling on a phone"


def test_the_page_is_offline_and_under_a_strict_csp(dashboard):
    response = requests.get(dashboard.page_url, auth=("admin", PASSWORD), timeout=10)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp and "unsafe-inline" not in csp
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", response.text)


def test_wrong_password_is_401_and_unset_password_refuses(dashboard, start_server):
    wrong = requests.get(dashboard.page_url, auth=("admin", "nope"), timeout=10)
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(dashboard.page_url, timeout=10).status_code == 401
    unset = start_server(ADMIN_PASSWORD=None, NEXT_PUBLIC_APP_URL=None)
    refused = requests.get(f"{unset.url}/admin/training-monitor", auth=("admin", PASSWORD), timeout=10)
    assert refused.status_code == 503 and "ADMIN_PASSWORD" in refused.json()["message"]


def test_a_blank_password_counts_as_unset(start_server):
    blank = start_server(ADMIN_PASSWORD="   ", NEXT_PUBLIC_APP_URL=None)
    refused = requests.get(f"{blank.url}/admin/training-monitor", auth=("admin", "   "), timeout=10)
    assert refused.status_code == 503 and "ADMIN_PASSWORD" in refused.json()["message"]


def test_a_post_with_a_foreign_origin_is_403(dashboard, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    battle_id = insert_battle(db, score=97, breakthrough="pending_review", snippet="Tactic")
    url = f"{dashboard.page_url}?action=promote"
    for headers in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"}, {}):
        response = requests.post(url, json={"battleId": battle_id}, auth=("admin", PASSWORD), timeout=10,
                                 headers=headers)
        assert response.status_code == 403, headers
    same = requests.post(url, json={"battleId": battle_id}, auth=("admin", PASSWORD), timeout=10,
                         headers={"Origin": dashboard.url})
    assert same.status_code == 200
    form = requests.post(f"{dashboard.page_url}?action=resume", data="x=1", auth=("admin", PASSWORD), timeout=10,
                         headers={"Origin": dashboard.url, "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    assert db.execute("select count(*) from sandbox_tactics").fetchone()[0] == 1

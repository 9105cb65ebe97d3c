"""The dashboard's autonomous training in a real headless Chromium, against `python -m lib serve`
and the real database: the closer's quality over time, the proposal queue and its actions, and the
Versions panel fitting its width."""
import pytest

from lib.store.proposal_queries import ProposalQueries
from lib.store.queries import Queries
from tests.conftest import seed_personas, wait_until
from tests.dashboard_page import PASSWORD, insert_battle, loaded, new_page
from tests.integration.test_proposals import taken_version


@pytest.fixture
def dashboard(start_server):
    server = start_server(ADMIN_PASSWORD=PASSWORD, NEXT_PUBLIC_APP_URL=None, LLM_PROVIDER="simulated")
    server.page_url = f"{server.url}/admin/training-monitor"
    return server


LONG_TACTICS = [
    ("Restate the seller's exact worry about the closing date word for word, then offer the written plan before "
     "any number is said aloud."),
    ("When a relative is mentioned, offer a joint call with everyone who must agree, and send the same summary "
     "to each of them afterwards."),
    ("Quote the repair estimate line by line with photos of comparable kitchens and roofs, and let the homeowner "
     "challenge every item."),
    ("Explain escrow, title insurance and proof of funds in plain words, then invite the lawyer to review the "
     "contract at our cost."),
]


def decided_versions(psycopg_store, db, count: int) -> None:
    """`count` versions decided by the canary, with long descriptions, and battles on each."""
    proposals = ProposalQueries(psycopg_store)
    for n, text in enumerate(LONG_TACTICS[:count]):
        proposals.propose("add", text=text)
        candidate = taken_version(proposals, 12)
        decision = "adopted" if n % 2 == 0 else "rolled_back"
        diff = 4.2 if decision == "adopted" else -3.9
        Queries(psycopg_store).record_canary(candidate, decision, 48, diff, [diff - 2.1, diff + 2.1], 100)
        for score in (80 + n, 84 + n):
            battle_id = insert_battle(db, score=score)
            db.execute("update sandbox_battles set version_id = %s where id = %s", (candidate, battle_id))


def test_the_versions_panel_fits_its_width_at_1440px(browser, dashboard, psycopg_store, db):
    seed_personas(psycopg_store, 3)
    decided_versions(psycopg_store, db, 4)
    context, page = new_page(browser, dashboard, {"width": 1440, "height": 900})
    loaded(page, dashboard.page_url)
    fit = page.evaluate("""() => {
        const frame = document.querySelector('#versions .scroll'), panel = document.querySelector('#versions-panel');
        const rightmost = Math.max(...[...document.querySelectorAll('#versions-table tr')]
            .map(row => row.lastElementChild.getBoundingClientRect().right));
        return [frame.scrollWidth, frame.clientWidth, rightmost, panel.getBoundingClientRect().right];
    }""")
    buttons = page.locator("#versions-table button", has_text="Roll back").count()
    context.close()
    scroll_width, client_width, rightmost, panel_right = fit
    assert scroll_width <= client_width, "the table scrolls sideways: columns are cut off"
    assert rightmost <= panel_right
    assert buttons >= 3


def test_an_empty_queue_with_nothing_decided_shows_no_stray_text(browser, dashboard, psycopg_store, db):
    seed_personas(psycopg_store, 3)
    context, page = new_page(browser, dashboard, {"width": 1440, "height": 900})
    loaded(page, dashboard.page_url)
    page.wait_for_selector("#autonomy form.propose")
    text = page.locator("#autonomy").inner_text()
    context.close()
    assert "The queue is empty." in text
    assert "null" not in text and "undefined" not in text


def test_quality_over_time_and_the_proposal_queue_with_its_actions(browser, dashboard, psycopg_store, db):
    seed_personas(psycopg_store, 3)
    decided_versions(psycopg_store, db, 2)
    proposals = ProposalQueries(psycopg_store)
    proposals.propose("add", text="Ask which day suits the seller before naming any price.")
    proposals.propose("add", text="Thank the seller for every hard question, then answer it plainly.")
    context, page = new_page(browser, dashboard, {"width": 1440, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())
    loaded(page, dashboard.page_url)
    page.wait_for_selector("#autonomy svg.quality")
    assert page.locator("#autonomy polyline.version-line").count() == 2
    assert page.locator("#autonomy line.marker.adopted").count() == 1
    assert page.locator("#autonomy line.marker.rolled_back").count() == 1
    assert page.locator("#autonomy line.true-quality").count() == 2, "simulated: each version's true quality"
    queue = page.locator("#proposal-queue li.proposal")
    assert [queue.nth(i).get_attribute("data-id") for i in range(queue.count())] == ["3", "4"]
    queue.nth(1).get_by_role("button", name="Fast-track").click()
    wait_until(lambda: page.locator("#proposal-queue li.proposal").first.get_attribute("data-id") == "4", 10,
               "the fast-tracked proposal comes first")
    page.locator("#proposal-queue li.proposal[data-id='3']").get_by_role("button", name="Veto").click()
    wait_until(lambda: page.locator("#proposal-queue li.proposal").count() == 1, 10, "the vetoed one leaves")
    repeated = "Thank the seller for every hard question, then answer it plainly!"
    page.fill("#propose-text", repeated)
    page.eval_on_selector("#propose-text", "input => { input.dataset.before = 'yes'; }")
    page.get_by_role("button", name="Propose").click()
    page.wait_for_selector("text=/repeats proposal #4/", timeout=10_000)
    # The panel re-renders after the action (a new box): the refused text is still there to fix.
    box_after = "() => { const box = document.querySelector('#propose-text'); return box.dataset.before ? null : box.value; }"
    assert wait_until(lambda: page.evaluate(box_after), 10, "the panel re-rendered") == repeated
    page.fill("#propose-text", "Offer the seller a call with the title company before signing.")
    page.get_by_role("button", name="Propose").click()
    wait_until(lambda: page.locator("#proposal-queue li.proposal").count() == 2, 10, "the new proposal is queued")
    assert page.input_value("#propose-text") == "", "cleared once queued"
    context.close()
    listing = proposals.listing()
    assert [p["id"] for p in listing["queue"]] == [4, 5]
    assert listing["decided"][0]["status"] == "vetoed"
    assert listing["queue"][1]["proposedBy"] == "a person (dashboard)"

"""The dashboard's charts in headless Chromium: the runs chart's axes, bars, cap and range, its time
axis fitted to a short history, and the persona sparklines at desktop width."""
import re

from tests.conftest import seed_personas
from tests.dashboard_page import insert_battle, insert_run, loaded, new_page


def test_the_run_chart_has_one_dollar_axis_dates_the_cap_a_legend_and_a_range(page, dashboard, psycopg_store, db):
    seed_personas(psycopg_store, 1)
    for hours in (2, 5, 8):
        insert_run(db, cost=0.11, cap=0.25, hours_ago=hours, score=70 + hours)
    killed = insert_run(db, cost=0.01, cap=0.01, hours_ago=30, status="killed", kill=True)
    loaded(page, dashboard.page_url)
    page.wait_for_selector("#runs-chart rect.bar")
    heights = page.eval_on_selector_all("#runs-chart rect.bar",
                                        "bars => bars.map(bar => [bar.dataset.id, Number(bar.getAttribute('height'))])")
    by_run = dict(heights)
    big = max(height for run, height in heights if run != killed)
    assert by_run[killed] > 0 and 9.5 < big / by_run[killed] < 12.5, "bars on one dollar scale: $0.11 is 11 × $0.01"
    labels = page.eval_on_selector_all("#runs-chart .axis text", "nodes => nodes.map(node => node.textContent)")
    assert any(label.startswith("$0.") for label in labels) and "$0.00" in labels, labels
    assert {"0", "25", "50", "75", "100"} <= set(labels), "the score axis, with its own labels"
    assert len([label for label in labels if re.search(r"\d", label) and not label.startswith("$")
                and label not in {"0", "25", "50", "75", "100"}]) >= 3, f"dates on the x-axis: {labels}"
    assert page.locator("#runs-chart path.cap").count() == 1
    assert page.locator("#runs-chart .grid line").count() == 5
    legend = page.inner_text("#runs-legend")
    assert "killed" in legend and "cost cap" in legend and "average referee score" in legend
    assert "killed: cost cap reached" in page.eval_on_selector(f"#runs-chart rect[data-id='{killed}'] title",
                                                                "node => node.textContent")
    page.click("#runs-panel button[data-range='24h']")
    page.wait_for_function("() => document.querySelectorAll('#runs-chart rect.bar').length === 3")
    assert any(entry[1].get("range") == "24h" for entry in page.requests.log)
    assert page.get_attribute("#runs-panel button[data-range='24h']", "aria-pressed") == "true"


def test_persona_sparklines_stay_visible_at_1440px(browser, dashboard, psycopg_store, db):
    seed_personas(psycopg_store, 14)
    for name in ("Skeptical Sam", "Competing-Offers Carlos", "Behind-on-Payments Brenda"):
        for score in (60, 75, 90):
            insert_battle(db, persona=name, score=score)
    context, page = new_page(browser, dashboard, {"width": 1440, "height": 900})
    loaded(page, dashboard.page_url)
    boxes = page.eval_on_selector_all("#personas svg.spark", """sparks => sparks.map(spark => {
        const box = spark.getBoundingClientRect(), frame = spark.closest('.scroll').getBoundingClientRect();
        return [box.right, frame.right, window.innerWidth]; })""")
    context.close()
    assert len(boxes) == 14
    for right, frame, viewport in boxes:
        assert right <= frame + 0.5 and right <= viewport, "the trend column is not cut off"


def test_on_a_fresh_database_the_runs_chart_fits_its_time_axis_to_the_runs(page, dashboard, psycopg_store, db):
    """Three runs in the last half hour, on the 7-day view: spread across the plot, not a sliver."""
    seed_personas(psycopg_store, 1)
    for minutes in (30, 20, 5):
        insert_run(db, cost=0.05, cap=0.25, hours_ago=minutes / 60, score=70)
    loaded(page, dashboard.page_url)
    page.wait_for_function("() => document.querySelectorAll('#runs-chart rect.bar').length === 3")
    assert page.get_attribute("#runs-panel button[data-range='7d']", "aria-pressed") == "true"
    centres = sorted(page.eval_on_selector_all("#runs-chart rect.bar", """bars => bars.map(bar =>
        Number(bar.getAttribute('x')) + Number(bar.getAttribute('width')) / 2)"""))
    left, right = page.eval_on_selector("#runs-chart .grid line", "line => [Number(line.getAttribute('x1')), "
                                                                  "Number(line.getAttribute('x2'))]")
    assert centres[-1] - centres[0] > 0.5 * (right - left), f"the runs fill the plot: {centres} in {left}–{right}"
    ticks = page.eval_on_selector_all("#runs-chart .axis text", "nodes => nodes.map(node => node.textContent)")
    times = [label for label in ticks if re.fullmatch(r"\d\d:\d\d", label)]
    assert len(times) >= 2, f"times of day on the fitted axis: {ticks}"
    assert "since" in page.get_attribute("#runs-chart svg", "aria-label")

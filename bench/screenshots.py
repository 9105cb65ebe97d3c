"""The README's dashboard screenshots, from simulated data: `python -m bench.screenshots`.

Runs 20 simulated batches (one of them tripping its cost cap) on a fresh embedded database,
spreads them over the last week, serves the dashboard with `python -m lib serve`, and saves what
headless Chromium shows at desktop and phone width, and a review in its transcript, to
artifacts/screenshots/ (git-ignored), or with `--docs` to docs/screenshots/, the README's: a run
never changes tracked files unless asked.
"""
from __future__ import annotations

import argparse
import secrets
import socket
import time
from pathlib import Path
from typing import Any

from bench.dashboard_data import dashboard_database, serve, simulate_history
from lib.config import PROJECT_ROOT

ARTIFACTS = PROJECT_ROOT / "artifacts" / "screenshots"
DOCS = PROJECT_ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
SHOTS: dict[str, dict[str, Any]] = {
    "dashboard-desktop.png": {"viewport": {"width": 1440, "height": 900}, "full_page": True, "scale": 1},
    "dashboard-phone.png": {"viewport": {"width": 390, "height": 844}, "full_page": False, "scale": 2}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def output_dir(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", action="store_true",
                        help="write the README's screenshots in docs/screenshots/ (default: artifacts/screenshots/)")
    return DOCS if parser.parse_args(argv).docs else ARTIFACTS


def shoot(url: str, password: str, out: Path) -> list:
    from playwright.sync_api import sync_playwright

    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for name, shot in SHOTS.items():
            context = browser.new_context(http_credentials={"username": "admin", "password": password},
                                          viewport=shot["viewport"], device_scale_factor=shot["scale"],
                                          reduced_motion="reduce")
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("body[data-loaded='true']")
            page.wait_for_selector("#runs-chart svg")
            page.mouse.move(0, 0)
            out.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out / name), full_page=shot["full_page"])
            saved.append(out / name)
            # And a review, inside its transcript, when the simulated week left one pending.
            if name == "dashboard-desktop.png" and not page.locator("#tile-pending button").count():
                print("no breakthrough is pending review in this simulated week: dashboard-review.png not taken "
                      "(run again for another week)")
            elif name == "dashboard-desktop.png":
                page.click("#tile-pending button")
                page.wait_for_selector("#transcript[open] .line.moment")
                page.screenshot(path=str(out / "dashboard-review.png"))
                saved.append(out / "dashboard-review.png")
            context.close()
        browser.close()
    return saved


def main(argv: list[str] | None = None) -> None:
    out = output_dir(argv)  # a bad argument stops before the minute of simulation
    started = time.monotonic()
    with dashboard_database("screenshots") as url:
        simulate_history(url)
        password = secrets.token_urlsafe(12)
        port = free_port()
        server = serve(url, password, port)
        try:
            saved = shoot(f"http://127.0.0.1:{port}/admin/training-monitor", password, out)
        finally:
            server.terminate()
            server.wait(10)
    for path in saved:
        print(f"saved {path.relative_to(PROJECT_ROOT)} ({path.stat().st_size // 1024} KiB)")
    print(f"in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()

"""Screenshots of the case studies for the README, from a home `make run` filled.

Usage::

    .venv/bin/python docs/capture_case_screenshots.py --home .charter-demo

Serves the home on a free loopback port, logs in as the cases' first approver
with a fresh one-hour token in Debian's headless chromium (Playwright), and
saves the pages the README shows under docs/screenshots/case-*.png.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from charter.api import create_app
from charter.cases._common import APPROVERS
from charter.sdk import open_registry
from charter.settings import Settings

OUT = Path(__file__).parent / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
# (file name, page, element to capture or None for the viewport)
SHOTS = [
    ("case-credit-gate-refused", "/ui/models/credit-risk/versions/2.4.0", "#gates"),
    ("case-credit-bias-audit", "/ui/models/credit-risk/versions/2.4.0", "[data-testid=bias-audit]"),
    ("case-heart-at-risk", "/ui/models/heart-diagnosis/versions/1.1.0", None),
    ("case-heart-rollback", "/ui/models/heart-diagnosis/history", None),
    ("case-llm-redteam-1.0.0", "/ui/models/support-assistant/versions/1.0.0", "#gates"),
    ("case-llm-guarded-1.0.1", "/ui/models/support-assistant/versions/1.0.1", "#profile"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=".charter-demo")
    args = parser.parse_args()
    settings = Settings(home=Path(args.home))
    with open_registry(settings=settings) as reg:
        token, _ = reg.create_token(user=next(iter(APPROVERS)), expires="1h", label="screenshots")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    base = f"http://127.0.0.1:{port}"
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/ui/")
        page.fill("#token", token)
        page.click("form[action='/ui/login'] button[type=submit]")
        page.wait_for_url(lambda url: "/ui/login" not in url)
        for name, path, selector in SHOTS:
            page.goto(base + path)
            target = page.locator(selector).first if selector else page
            target.screenshot(path=str(OUT / f"{name}.png"))
            print(f"saved {name}.png from {path}")
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main()

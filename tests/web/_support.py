"""Helpers of the browser tests: the running server, logging in, screenshots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Locator, Page

from charter.service import Registry
from web._seed import Seeded

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Server:
    """A running server: where it listens, its registry, and the login tokens."""

    url: str
    registry: Registry
    tokens: Seeded


def login(page: Page, server: Server, token: str, *, start: str = "/ui/") -> None:
    """Open ``start``, get sent to the login form, log in with ``token``, come back."""
    page.goto(server.url + start)
    assert "/ui/login" in page.url
    page.fill("#token", token)
    page.click("form[action='/ui/login'] button[type=submit]")
    page.wait_for_url(lambda url: "/ui/login" not in url)


def screenshot(target: Page | Locator, name: str) -> None:
    """Save a screenshot of the page's viewport, or of one element, under docs/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

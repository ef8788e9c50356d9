"""Browser tests of the web UI: a real uvicorn server on loopback, driven by Debian's chromium.

Each test gets a fresh copy of a registry home seeded once per worker (by
:mod:`web._seed`) behind its own server on a free port, so tests can change
state and run in parallel. The browser is started once per worker as well.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from charter.api import create_app
from charter.sdk import init_registry
from charter.service import Registry
from charter.settings import Settings
from web._seed import Seeded, seed
from web._support import CHROMIUM_ARGS, Server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    """A registry home seeded once (closed, so its files can be copied) and its tokens."""
    root = tmp_path_factory.mktemp("seeded")
    registry = init_registry(settings=Settings(home=root / "home", user="alice"))
    try:
        tokens = seed(registry, root)
    finally:
        registry.close()
    return root / "home", tokens


@pytest.fixture
def server(tmp_path: Path, seeded: tuple[Path, Seeded]) -> Iterator[Server]:
    """A copy of the seeded registry, served by uvicorn on a free loopback port."""
    template, tokens = seeded
    shutil.copytree(template, tmp_path / "home")
    settings = Settings(home=tmp_path / "home", user="alice")
    registry = Registry(settings)
    port = _free_port()
    app = create_app(settings, registry=registry)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the uvicorn server did not start")
        time.sleep(0.02)
    yield Server(f"http://127.0.0.1:{port}", registry, tokens)
    running.should_exit = True
    thread.join(timeout=10)
    registry.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, driven by Playwright (never `playwright install`)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "the web UI tests need Debian's chromium: apt-get install -y chromium "
            "(`make services` installs it)"
        )
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page, 1280 px wide."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()

"""Browser tests: Playwright driving the Chromium at $CHROMIUM (default /usr/bin/chromium; `make test` finds or
installs one and sets it, see chromium.py) against pytest-django's live server, with a real Celery worker in this
process for the outbox consumers. Every page visited is saved under var/screenshots/."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connections

from tourops.celery import app

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    """Per module, not per session: Playwright's sync API keeps an event loop running in this thread while it is
    open, which would break later tests of this worker that run their own loop. The tests' own ORM calls stay
    synchronous, hence the async-unsafe permission while it is open."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"No Chromium at {CHROMIUM}: run `make browser` or set CHROMIUM=/path/to/chromium.", pytrace=False
        )
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB")  # a phone
    page = context.new_page()
    yield page
    context.close()


class Shots:
    """Save a full-page screenshot named after the test and the step."""

    def __init__(self, test_name: str):
        self.prefix = re.sub(r"[^a-z0-9_]+", "_", test_name.lower())
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, page, step: str) -> Path:
        self.count += 1
        path = SCREENSHOTS / f"{self.prefix}_{self.count:02d}_{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request) -> Shots:
    return Shots(request.node.name)


@app.task(name="tests.e2e.close_connections")
def close_connections() -> None:
    connections.close_all()


@pytest.fixture
def worker(transactional_db):
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as running:
        yield running
        from tests.workers import wait_until_idle

        wait_until_idle()
        close_connections.delay()
        time.sleep(0.3)

"""Fixtures for the web tests: estates, loaded stores, live servers and a headless Chromium.

Browser tests (``@pytest.mark.browser``) always run: a missing Chromium fails them with a
message saying how to install one (``.ci/run`` installs Debian's). Servers are the real app
on waitress in a background thread on a free loopback port, with data loaded before the
first request; two apps run side by side in this one process (the sample estate and the
small factory estate), which also checks that apps do not share callbacks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.data.history import open_history
from dashboard.report import ReportError
from dashboard.report.capture import chromium, serving
from dashboard.settings import SAMPLE_CONFIG, load_settings
from dashboard.web.app import create_app
from tests.factories import loaded_store
from tests.web.estate_factory import write_estate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def factory_config(tmp_path_factory) -> Path:
    """A small two-site estate with every category, a dropped row and HTML-like text."""
    return write_estate(tmp_path_factory.mktemp("factory-estate"))


@pytest.fixture(scope="session")
def factory_settings(factory_config):
    return load_settings(factory_config)


@pytest.fixture(scope="session")
def factory_store(factory_settings):
    store = loaded_store(factory_settings)
    return store


@pytest.fixture(scope="session")
def sample_config(tmp_path_factory) -> Path:
    """The bundled sample's config (``$COMANAGE_TEST_CONFIG`` overrides it).

    Should the bundled sample be missing, the same generator makes one in a temporary folder.
    """
    if os.environ.get("COMANAGE_TEST_CONFIG"):
        return Path(os.environ["COMANAGE_TEST_CONFIG"]).resolve()
    if SAMPLE_CONFIG.exists():
        return SAMPLE_CONFIG
    from dashboard.data.sample_command import main_sample

    return main_sample(
        devices=3000,
        seed=1,
        out=tmp_path_factory.mktemp("sample"),
        as_of="2026-11-20T12:00:00Z",
        quiet=True,
    )


@pytest.fixture(scope="session")
def sample_settings(sample_config):
    return load_settings(sample_config)


@pytest.fixture(scope="session")
def sample_store(sample_settings):
    """The sample with its history read-only (like the CLI's ``summary``: time in state and
    week-over-week figures, and the shipped ``history.sqlite`` never written by tests)."""
    store = loaded_store(sample_settings, history=open_history(sample_settings, read_only=True))
    return store


_CLI_CACHE: dict[tuple, dict] = {}


@pytest.fixture(scope="session")
def cli_summary():
    """``cli_summary(config, collection=None, site=None)``: the CLI's JSON summary."""
    return run_cli_summary


def run_cli_summary(config: Path, collection: str | None = None, site: str | None = None) -> dict:
    """``comanage-dashboard summary --format json`` for a config and filter (cached)."""
    key = (str(config), collection, site)
    if key not in _CLI_CACHE:
        command = [
            sys.executable,
            "-m",
            "dashboard",
            "summary",
            "--config",
            str(config),
            "--format",
            "json",
        ]
        if collection:
            command += ["--collection", collection]
        if site:
            command += ["--site", site]
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr
        _CLI_CACHE[key] = json.loads(done.stdout)
    return _CLI_CACHE[key]


# -- live servers and the browser -------------------------------------------------------------


@pytest.fixture(scope="session")
def sample_server(sample_settings, sample_store):
    app = create_app(sample_settings, sample_store)
    with serving(app, threads=8) as url:
        yield url


@pytest.fixture(scope="session")
def factory_server(factory_settings, factory_store):
    app = create_app(factory_settings, factory_store)
    with serving(app, threads=8) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            with chromium(playwright) as launched:
                yield launched
        except ReportError as error:
            pytest.fail(f"browser tests need Chromium: {error}", pytrace=False)


class PageWatch:
    """Console errors, page errors and every request URL of one page."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.watch = PageWatch(page)
    yield page
    context.close()

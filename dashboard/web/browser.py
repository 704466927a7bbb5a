"""Running the app in-process and driving a headless Chromium: for tests, screenshots, reports.

The system Chromium is used (``$COMANAGE_BROWSER``, else ``chromium`` on the PATH), never a
browser download: ``playwright install`` is not needed. A missing browser is an error with a
clear message, so a test run that needs one fails instead of silently skipping.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",
)


class BrowserMissing(RuntimeError):
    pass


def chromium_path() -> str:
    """The Chromium to drive; raises ``BrowserMissing`` saying how to get one."""
    configured = os.environ.get("COMANAGE_BROWSER")
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise BrowserMissing(f"COMANAGE_BROWSER={configured} is not an executable file")
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserMissing("no Chromium found: install it (Debian: apt-get install chromium) "
                         "or set COMANAGE_BROWSER to its path")


@contextmanager
def chromium(playwright) -> Iterator:
    """A headless Chromium (playwright sync API), closed on exit.

    Playwright gives every launch a fresh temporary profile itself (it refuses
    ``--user-data-dir``).
    """
    browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                         args=list(CHROMIUM_ARGS))
    try:
        yield browser
    finally:
        browser.close()


@contextmanager
def serving(app, host: str = "127.0.0.1", port: int = 0, threads: int = 4) -> Iterator[str]:
    """Serve a Dash app on waitress in a daemon thread; yields its base URL (``http://...:N``).

    Port 0 picks a free port, so parallel runs do not collide.
    """
    import waitress.server

    server = waitress.server.create_server(app.server, host=host, port=port, threads=threads,
                                           ident="comanage-dashboard")
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)


def wait_for_dash(page, graphs: int = 0, timeout: float = 30_000) -> None:
    """Wait until Dash has rendered and no callback is pending (and ``graphs`` plots drew)."""
    page.wait_for_selector("#page", timeout=timeout)
    if graphs:
        page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {graphs}",
            timeout=timeout)
    page.wait_for_function(
        "!document.querySelector('[data-dash-is-loading=\"true\"]')", timeout=timeout)

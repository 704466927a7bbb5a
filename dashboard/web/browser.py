"""Running the app in-process and driving a headless Chromium: for tests, screenshots, reports.

The system's Chromium, Chrome or Microsoft Edge is used, never a browser download
(``playwright install`` is not needed): ``chromium_path`` is the one finder that tests, the
screenshot script and ``report`` share (the ``browser`` setting, ``$COMANAGE_BROWSER``, then the
usual install places on Linux, Windows and macOS). A missing browser is an error with a clear
message, so a test run that needs one fails instead of silently skipping.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


class BrowserMissing(RuntimeError):
    pass


INSTALL_HINT = (
    "install one (Debian/Ubuntu: apt-get install chromium; Windows: Microsoft "
    "Edge is built in) or set COMANAGE_BROWSER (or `browser` in the config file) "
    "to its path"
)
# Names looked up on the PATH, then fixed install places, in this order.
BROWSER_NAMES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "microsoft-edge",
    "microsoft-edge-stable",
    "msedge",
    "chrome",
)
BROWSER_PATHS = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/microsoft-edge",
    "/snap/bin/chromium",
    "/opt/google/chrome/chrome",
    "/opt/microsoft/msedge/msedge",
    "%ProgramFiles(x86)%\\Microsoft\\Edge\\Application\\msedge.exe",
    "%ProgramFiles%\\Microsoft\\Edge\\Application\\msedge.exe",
    "%ProgramFiles%\\Google\\Chrome\\Application\\chrome.exe",
    "%ProgramFiles(x86)%\\Google\\Chrome\\Application\\chrome.exe",
    "%LocalAppData%\\Google\\Chrome\\Application\\chrome.exe",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
)


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _expand(path: str, environ) -> str | None:
    """``%Name%`` from ``environ`` (Windows places); None when a variable is not set."""

    def value(name: str) -> str:
        found = environ.get(name) or next(
            (v for k, v in environ.items() if k.upper() == name.upper()), None
        )
        if not found:
            raise KeyError(name)
        return found

    out, rest = "", path
    while "%" in rest:
        before, _, after = rest.partition("%")
        name, _, rest = after.partition("%")
        try:
            out += before + value(name)
        except KeyError:
            return None
    return out + rest


def chromium_path(configured: str | None = None, environ=None) -> str:
    """The Chromium, Chrome or Edge to drive; raises ``BrowserMissing`` saying how to get one.

    ``configured`` (the ``browser`` setting, which ``COMANAGE_BROWSER`` already overrides)
    wins, else ``$COMANAGE_BROWSER``; either may be a path or a name on the PATH. Otherwise
    ``BROWSER_NAMES`` on the PATH, then ``BROWSER_PATHS``.
    """
    environ = os.environ if environ is None else environ
    for where, value in (
        ("browser", configured),
        ("COMANAGE_BROWSER", environ.get("COMANAGE_BROWSER")),
    ):
        value = (value or "").strip()
        if not value:
            continue
        if _executable(value):
            return value
        found = shutil.which(value)
        if found:
            return found
        raise BrowserMissing(f"{where} = {value} is not an executable file: {INSTALL_HINT}")
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    for place in BROWSER_PATHS:
        path = _expand(place, environ)
        if path and _executable(path):
            return path
    raise BrowserMissing(f"no Chromium, Chrome or Microsoft Edge found: {INSTALL_HINT}")


@contextmanager
def chromium(playwright, executable: str | None = None, extra_args=()) -> Iterator:
    """A headless Chromium (playwright sync API), closed on exit; ``executable``: an
    already found browser (default ``chromium_path()``).

    Playwright gives every launch a fresh temporary profile itself (it refuses
    ``--user-data-dir``).
    """
    browser = playwright.chromium.launch(
        executable_path=executable or chromium_path(),
        headless=True,
        args=[*CHROMIUM_ARGS, *extra_args],
    )
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

    server = waitress.server.create_server(
        app.server, host=host, port=port, threads=threads, ident="comanage-dashboard"
    )
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
    # Predicates are arrow functions: a bare expression that playwright has to poll is run
    # with eval(), which the Content-Security-Policy (rightly) refuses.
    if graphs:
        page.wait_for_function(
            f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {graphs}",
            timeout=timeout,
        )
    page.wait_for_function(
        "() => !document.querySelector('[data-dash-is-loading=\"true\"]')", timeout=timeout
    )

"""The report's browser part: running the app in-process and capturing its report page in a
headless Chromium (figures, full-page PNG, printed PDF). Tests and the screenshot script drive
the browser through the same helpers.

The system's Chromium, Chrome or Microsoft Edge is used, never a browser download
(``playwright install`` is not needed): ``chromium_path`` is the one finder that tests, the
screenshot script and ``report`` share (the ``browser`` setting, ``$COMANAGE_BROWSER``, then the
usual install places on Linux, Windows and macOS). A missing browser is an error with a clear
message, so a test run that needs one fails instead of silently skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import waitress.server
from dash import Dash

from ..text import one_line
from . import ReportError

if TYPE_CHECKING:  # playwright is a test extra, imported only when a report draws
    from playwright.sync_api import Browser, Page, Playwright, Response

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


PASSWORD_ENV = "COMANAGE_REPORT_PASSWORD"
TOKEN_HEADER = "X-Comanage-Report-Token"
PAGE_WIDTH = 1200  # the report page's width (pages/report.WIDTH)
PAPERS_MM = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}
MARGIN_MM = 10.0
RENDER_TIMEOUT_MS = 90_000
MM_TO_CSS_PX = 96 / 25.4


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


def _expand(path: str, environ: Mapping[str, str]) -> str | None:
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


def chromium_path(configured: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The Chromium, Chrome or Edge to drive; raises ``ReportError`` saying how to get one.

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
        raise ReportError(f"{where} = {value} is not an executable file: {INSTALL_HINT}")
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    for place in BROWSER_PATHS:
        path = _expand(place, environ)
        if path and _executable(path):
            return path
    raise ReportError(f"no Chromium, Chrome or Microsoft Edge found: {INSTALL_HINT}")


@contextmanager
def chromium(
    playwright: Playwright, executable: str | None = None, extra_args: Iterable[str] = ()
) -> Iterator[Browser]:
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
def serving(app: Dash, host: str = "127.0.0.1", port: int = 0, threads: int = 4) -> Iterator[str]:
    """Serve a Dash app on waitress in a daemon thread; yields its base URL (``http://...:N``).

    Port 0 picks a free port, so parallel runs do not collide.
    """
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


def wait_for_dash(page: Page, graphs: int = 0, timeout: float = 30_000) -> None:
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


# -- capturing the report page -----------------------------------------------------------------


def pdf_options(paper: str, footer: str = "") -> dict[str, Any]:
    """page.pdf options: the paper, its margins, the scale that fits the page's width, and a
    footer line (``footer``, then "page N of M")."""
    width_mm, _height = PAPERS_MM[paper]
    printable = (width_mm - 2 * MARGIN_MM) * MM_TO_CSS_PX
    margin = f"{MARGIN_MM:g}mm"
    footer_html = (
        f'<div style="font-family:sans-serif;font-size:7px;color:#5c636a;width:100%;'
        f'margin:0 {margin};display:flex;justify-content:space-between;">'
        f'<span>{escape(footer)}</span><span>page <span class="pageNumber"></span> of '
        f'<span class="totalPages"></span></span></div>'
    )
    return {
        "format": paper,
        "print_background": True,
        "margin": {
            "top": margin,
            "bottom": f"{MARGIN_MM + 4:g}mm",
            "left": margin,
            "right": margin,
        },
        "scale": round(min(1.0, printable / PAGE_WIDTH), 4),
        "prefer_css_page_size": False,
        "display_header_footer": True,
        "header_template": "<span></span>",
        "footer_template": footer_html,
    }


def _sign_in(page: Page, base: str, user: str, password: str, path: str) -> None:
    page.goto(f"{base}/login?next={quote(path, safe='')}")
    if not page.query_selector("#login-form"):
        return  # no sign-in page: the dashboard does not use accounts
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_load_state("load")
    if urlsplit(page.url).path.endswith("/login"):
        raise ReportError(f"the dashboard at {base} refused the sign-in of {user!r}")


def _check_response(response: Response | None, page: Page, base: str) -> None:
    status = response.status if response is not None else 0
    if urlsplit(page.url).path.endswith("/login"):
        raise ReportError(
            f"the dashboard at {base} asks for a sign-in: give --user NAME and "
            f"the password in ${PASSWORD_ENV}"
        )
    if status == 401:
        raise ReportError(
            f"the dashboard at {base} refused the report (HTTP 401): it needs "
            f"a sign-in (--user NAME with ${PASSWORD_ENV}) or a header "
            "(--header)"
        )
    if status == 403:
        raise ReportError(
            f"the dashboard at {base} refused the report (HTTP 403): with auth "
            '= "proxy", run the report from a trusted_proxies address with '
            '--header "<proxy_user_header>: <name>", or go through the proxy'
        )
    if status >= 400:
        raise ReportError(f"the dashboard at {base} answered HTTP {status}", exit_code=1)


def capture(
    base: str,
    path: str,
    formats: tuple[str, ...],
    executable: str,
    paper: str,
    headers: dict[str, str] | None = None,
    user: str | None = None,
    password: str | None = None,
    timings: dict[str, float] | None = None,
    extra_args: tuple[str, ...] = (),
) -> tuple[dict[str, Any], bytes | None, bytes | None]:
    """(figures, png, pdf) of the report page at ``base + path``."""
    # playwright is a test extra: only a report that draws PNG or PDF needs it
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    timings = {} if timings is None else timings
    started = time.perf_counter()
    png = pdf = None
    try:
        with (
            sync_playwright() as playwright,
            chromium(playwright, executable, extra_args) as browser,
        ):
            timings["browser start"] = time.perf_counter() - started
            context = browser.new_context(
                viewport={"width": PAGE_WIDTH, "height": 1000},
                device_scale_factor=1,
                extra_http_headers=headers or {},
                locale="en-GB",
                timezone_id="UTC",
            )
            page = context.new_page()
            page.set_default_timeout(RENDER_TIMEOUT_MS)
            step = time.perf_counter()
            if user:
                _sign_in(page, base, user, password or "", path)
            response = page.goto(base + path, wait_until="load")
            _check_response(response, page, base)
            page.wait_for_selector("#report", state="attached")
            error = page.get_attribute("#report", "data-error")
            if error:
                raise ReportError(error)
            graphs = int(page.get_attribute("#report", "data-graphs") or 0)
            wait_for_dash(page, graphs=graphs, timeout=RENDER_TIMEOUT_MS)
            page.wait_for_function(
                "(n) => { const plots = document.querySelectorAll('#report .js-plotly-plot');"
                " return plots.length >= n && Array.from(plots).every("
                "p => p.querySelector('.main-svg') && p._fullLayout); }",
                arg=graphs,
                timeout=RENDER_TIMEOUT_MS,
            )
            page.evaluate("() => document.fonts.ready.then(() => true)")
            figures: dict[str, Any] = json.loads(page.text_content("#report-data") or "{}")
            timings["page render"] = time.perf_counter() - step
            if "png" in formats:
                step = time.perf_counter()
                png = page.screenshot(full_page=True, type="png", animations="disabled")
                timings["png"] = time.perf_counter() - step
            if "pdf" in formats:
                step = time.perf_counter()
                footer = " · ".join(
                    part
                    for part in (
                        f"{figures.get('title', 'Co-management')} {figures.get('week', '')}",
                        figures.get("organisation"),
                        (figures.get("scope") or {}).get("text"),
                    )
                    if part
                )
                pdf = page.pdf(**pdf_options(paper, footer))
                timings["pdf"] = time.perf_counter() - step
            context.close()
    except PlaywrightError as error:
        raise ReportError(f"the browser failed: {one_line(error)}", exit_code=1) from None
    return figures, png, pdf

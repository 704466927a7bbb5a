"""Security in a real headless Chromium (issue 7): sign-in and sign-out end to end, the pages
working under the Content-Security-Policy with no violation reported, and hostile device
names and error details shown as text with no script run (no dialog, no injected element).

The server is the hostile estate (``hostile_estate.py``) with ``auth = "users"``.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest

from dashboard.report.capture import serving, wait_for_dash
from dashboard.settings import load_settings
from dashboard.web import auth
from dashboard.web.app import create_app
from dashboard.web.pages.overview import GRAPHS
from tests.factories import loaded_store
from tests.web.hostile_estate import QUOTE_NAME, XSS_DETAIL, XSS_ID, XSS_NAME, write_hostile_estate

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
WATCH = """(() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation',
    e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
})();"""


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """(base URL, users file) of the hostile estate served with sign-in required."""
    folder = tmp_path_factory.mktemp("secured")
    users_file = folder / "users.json"
    accounts = auth.UserFile(users_file)
    accounts.add("alice", PASSWORD)
    accounts.add("carol", PASSWORD)
    settings = load_settings(write_hostile_estate(folder / "estate")).with_values(
        auth="users", users_file=str(users_file), secret_key="k" * 48
    )
    store = loaded_store(settings)
    with serving(create_app(settings, store), threads=8) as url:
        yield url, users_file


class Watch:
    """Everything a page must not do: CSP violations, dialogs, script errors."""

    def __init__(self, page):
        self.page = page
        self.csp: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.add_init_script(WATCH)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("dialog", self._dialog)

    def _console(self, message):
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.csp.append(message.text)
        elif message.type == "error" and "401" not in message.text:
            self.errors.append(message.text)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def violations(self) -> list[str]:
        return self.csp + (self.page.evaluate("window.__csp || []") or [])

    def assert_clean(self):
        assert self.dialogs == [], self.dialogs
        assert self.violations() == [], self.violations()
        assert self.errors == [], self.errors


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.watch = Watch(page)
    return page


def sign_in(
    page, base: str, user: str = "alice", password: str = PASSWORD, path: str = "/"
) -> None:
    page.goto(base + path)
    assert urlsplit(page.url).path == "/login"
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-submit")


# -- sign-in -------------------------------------------------------------------------------


def test_sign_in_and_out_end_to_end(page, secured):
    base, _ = secured
    response = page.goto(base + "/devices?site=PS1")
    assert urlsplit(page.url).path == "/login"
    assert "content-security-policy" in response.headers
    page.fill("#username", "alice")
    page.fill("#password", "not the password")
    page.click("#login-submit")
    assert page.inner_text("#login-message") == "Incorrect user name or password."
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(base + "/devices?site=PS1")
    wait_for_dash(page)
    page.wait_for_selector("#devices-grid .ag-row")
    assert page.inner_text("#signed-in-user") == "alice"
    cookie = next(c for c in page.context.cookies() if c["name"] == auth.SESSION_COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # the session is out of the page's reach

    page.click("#sign-out")
    page.wait_for_url(lambda url: urlsplit(url).path == "/login")
    assert page.inner_text("#login-message") == "You have signed out."
    page.goto(base + "/")
    assert urlsplit(page.url).path == "/login"
    page.watch.assert_clean()


def test_an_ended_session_sends_the_page_to_sign_in(page, secured):
    """A user removed while their page is open: the next callback gets 401, the page
    reloads onto the sign-in form instead of silently stopping."""
    base, users_file = secured
    accounts = auth.UserFile(users_file)
    accounts.add("temp", PASSWORD)
    sign_in(page, base, user="temp")
    wait_for_dash(page, graphs=len(GRAPHS))
    accounts.remove("temp")
    page.click("#refresh-button")
    page.wait_for_url(lambda url: urlsplit(url).path == "/login")
    assert page.locator("#login-form").is_visible()
    assert page.watch.dialogs == [] and page.watch.violations() == []


# -- the pages under the CSP -----------------------------------------------------------------


def test_every_page_works_under_the_policy(page, secured):
    base, _ = secured
    sign_in(page, base)
    wait_for_dash(page, graphs=len(GRAPHS))
    page.hover("#ovw-os-groups .js-plotly-plot")  # plotly's hover layer injects styles
    page.wait_for_timeout(300)

    page.goto(base + "/devices?site=PS1")
    wait_for_dash(page)
    page.wait_for_selector("#devices-grid .ag-row")
    # AG Grid string expressions (cellClassRules, getRowId) are evaluated without eval()
    page.wait_for_function(
        "() => document.querySelectorAll("
        "'#devices-grid .ag-cell.sev-high, #devices-grid .ag-cell.sev-medium,"
        " #devices-grid .ag-cell.sev-low').length > 0"
    )
    row_id = page.locator("#devices-grid .ag-center-cols-container .ag-row").first.get_attribute(
        "row-id"
    )
    assert row_id.startswith("PS1:")
    page.click("#devices-grid .ag-header-cell[col-id=name]")  # sorting: a callback round trip
    wait_for_dash(page)

    page.locator("#devices-grid a.device-link").first.click()
    page.wait_for_url(lambda url: "/device/" in url)
    wait_for_dash(page)
    page.watch.assert_clean()


# -- hostile text ------------------------------------------------------------------------------

INJECTED = """() => ({
  images: document.querySelectorAll('img[src="x"], img[onerror]').length,
  svgs: document.querySelectorAll('svg[onload]').length,
  scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('alert'))
    .length,
})"""
NOTHING = {"images": 0, "svgs": 0, "scripts": 0}


def test_hostile_text_is_text_on_the_overview(page, secured):
    base, _ = secured
    sign_in(page, base, user="carol")
    wait_for_dash(page, graphs=len(GRAPHS))
    assert XSS_DETAIL in page.inner_text("#ovw-errors")
    assert page.evaluate(INJECTED) == NOTHING
    page.watch.assert_clean()


def test_hostile_text_is_text_in_the_device_grid(page, secured):
    base, _ = secured
    page.set_viewport_size({"width": 3200, "height": 900})  # every column drawn at once
    sign_in(page, base, path="/devices?q=" + quote("<"))
    page.wait_for_url(lambda url: "/devices" in url)
    wait_for_dash(page)
    page.wait_for_selector("#devices-grid .ag-row")
    page.wait_for_function(
        "() => document.querySelectorAll('#devices-grid a.device-link').length >= 2"
    )
    names = page.locator("#devices-grid a.device-link").all_inner_texts()
    assert XSS_NAME in names and QUOTE_NAME in names
    errors = page.locator("#devices-grid .ag-cell[col-id=error]").all_inner_texts()
    assert XSS_DETAIL in errors
    assert page.evaluate(INJECTED) == NOTHING
    page.watch.assert_clean()


def test_hostile_text_is_text_on_the_device_page(page, secured):
    base, _ = secured
    sign_in(page, base, path=f"/device/{XSS_ID}?site=PS1")
    page.wait_for_url(lambda url: "/device/" in url)
    wait_for_dash(page)
    page.wait_for_function("name => document.body.innerText.includes(name)", arg=XSS_NAME)
    text = page.inner_text("#page")
    assert XSS_NAME in text and XSS_DETAIL in text
    assert page.evaluate(INJECTED) == NOTHING
    assert page.title() != ""  # the title is not replaced by markup either
    page.watch.assert_clean()


def test_the_watch_sees_a_violation(page):
    """The listeners above are live: an inline script the policy does not hash is blocked,
    reported, and its alert never opens."""
    from flask import Flask

    probe = Flask("csp-probe")

    @probe.route("/")
    def index():
        return (
            "<!DOCTYPE html><title>probe</title><script>alert(1)</script>",
            200,
            {"Content-Security-Policy": "script-src 'self'"},
        )

    class App:  # serving() wants a Dash-like object
        server = probe

    with serving(App()) as url:
        page.goto(url + "/")
        page.wait_for_function("() => (window.__csp || []).length > 0")
    assert page.watch.dialogs == []
    assert page.watch.violations()

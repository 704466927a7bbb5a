"""Accessibility and the chart toolbar in a real headless Chromium (issue 12).

- No page offers to send data outside the organisation: the chart toolbar holds "Download
  plot as a png" and nothing else, and no page requests anything from another host.
- axe-core (bundled by axe-playwright-python) finds no serious or critical WCAG 2.2 AA
  violation on any page, the sign-in page included.
- Keyboard only: from the overview, Tab and Enter reach a device list, then a device page,
  from every chart through its "View as table".
- The definitions panel opens from the keyboard and explains the two "inactive" counts.
- Charts say they are clickable (pointer, "Click to list the devices") and do not zoom on drag.
- The device list's column chooser is remembered by the browser across a reload.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe

from dashboard.report.capture import serving, wait_for_dash
from dashboard.web import auth
from dashboard.web.app import create_app
from dashboard.web.pages.overview import GRAPHS
from dashboard.web.trend_figures import FIGURES
from tests.factories import loaded_store

pytestmark = pytest.mark.browser

DEVICE = "/device/16777220?site=PS1"  # a device of the bundled sample
PAGES = ["/", "/trends", "/devices", "/devices?attention=any", DEVICE, "/report", "/no-such-page"]
ALLOWED_TOOLBAR = {"Download plot as a PNG"}
# What plotly's cloud buttons and links say (its "Share chart", "Edit in Chart Studio", the
# logo's link to plotly.com); "Co-managed share" (a trends chart) is not one of them.
OUTSIDE_WORDS = re.compile(
    r"share chart|chart studio|send data|to the cloud|edit in|"
    r"plotly\.com|plot\.ly",
    re.IGNORECASE,
)
# Dash 4's dropdown keeps an aria-hidden <input> as its tab stop and moves focus from it to
# its labelled button at once (focus never rests there: checked by the keyboard test below);
# axe sees a focusable hidden element. It is Dash's component, not fixable from outside
# without losing the dropdown's keyboard access, so it is left out of the scan.
AXE_EXCLUDE = [[".dash-dropdown-focus-target"]]
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}


def open_page(page, base: str, path: str) -> None:
    page.goto(base + path)
    wait_for_dash(page, graphs={"/": len(GRAPHS), "/trends": len(FIGURES)}.get(path, 0))
    if path.startswith("/devices"):
        page.wait_for_selector("#devices-grid .ag-row")


def serious_violations(page) -> list[str]:
    results = Axe().run(page, context={"exclude": AXE_EXCLUDE}, options=AXE_OPTIONS)
    return [
        f"{v['impact']} {v['id']}: {v['help']} at {[node['target'] for node in v['nodes'][:3]]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


# -- nothing leaves the organisation ----------------------------------------------------------

TOOLBAR = """() => [...document.querySelectorAll('.modebar-btn, .modebar a, .modebar button')]
  .map(b => b.getAttribute('data-title') || b.getAttribute('title') || b.textContent.trim())"""
CONTROLS = """() => [...document.querySelectorAll(
  'a, button, [role=button], [title], [data-title], [aria-label]')]
  .map(e => [e.textContent.trim().slice(0, 80), e.getAttribute('title') || '',
             e.getAttribute('data-title') || '', e.getAttribute('aria-label') || '',
             e.getAttribute('href') || ''].join(' | '))"""


@pytest.mark.parametrize("path", PAGES)
def test_no_control_sends_data_outside(page, sample_server, path):
    host = urlsplit(sample_server).netloc
    open_page(page, sample_server, path)
    for plot in page.locator(".js-plotly-plot").all():
        plot.hover()  # plotly shows its toolbar on hover
        page.wait_for_timeout(100)
        buttons = set(page.evaluate(TOOLBAR))
        assert buttons <= ALLOWED_TOOLBAR, buttons
    if path in ("/", "/trends"):  # interactive charts: the toolbar is there, reduced
        assert set(page.evaluate(TOOLBAR)) == ALLOWED_TOOLBAR
    offending = [text for text in page.evaluate(CONTROLS) if OUTSIDE_WORDS.search(text)]
    assert offending == []
    outside = [
        url
        for url in page.watch.requests
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != host
    ]
    assert outside == []


def test_overview_toolbar_is_download_only(page, sample_server):
    open_page(page, sample_server, "/")
    for graph_id in GRAPHS:
        page.hover(f"#{graph_id} .js-plotly-plot")
        page.wait_for_timeout(100)
        titles = page.locator(f"#{graph_id} .modebar-btn").evaluate_all(
            "els => els.map(e => e.getAttribute('data-title'))"
        )
        assert titles == ["Download plot as a PNG"], (graph_id, titles)


# -- axe-core ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_axe_finds_no_serious_violation(page, sample_server, path):
    open_page(page, sample_server, path)
    assert serious_violations(page) == []


def test_axe_with_the_table_views_and_definitions_open(page, sample_server):
    open_page(page, sample_server, "/")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    page.wait_for_timeout(300)
    assert serious_violations(page) == []


@pytest.fixture(scope="module")
def signed_in_server(tmp_path_factory, factory_settings, factory_store):
    folder = tmp_path_factory.mktemp("a11y-users")
    accounts = auth.UserFile(folder / "users.json")
    accounts.add("alice", "correct horse battery staple")
    settings = factory_settings.with_values(
        auth="users", users_file=str(folder / "users.json"), secret_key="k" * 48
    )
    with serving(create_app(settings, loaded_store(settings)), threads=4) as url:
        yield url


def test_axe_on_the_sign_in_page(page, signed_in_server):
    page.goto(signed_in_server + "/")
    page.wait_for_selector("#login-form")
    assert page.evaluate("() => document.documentElement.lang") == "en"
    assert serious_violations(page) == []


def test_pages_declare_language_and_main_landmark(page, sample_server):
    open_page(page, sample_server, "/")
    assert page.evaluate("() => document.documentElement.lang") == "en"
    assert page.locator("main#page").count() == 1
    assert page.locator("main h1").count() >= 1
    # every overview chart is a named figure with a text alternative
    for graph_id in GRAPHS:
        figure = page.locator(f"[role=figure]:has(#{graph_id})")
        assert figure.get_attribute("aria-label")
        summary = figure.locator(".chart-summary").inner_text()
        assert re.search(r"\d", summary), summary


# -- keyboard only ----------------------------------------------------------------------------


def tab_to(page, predicate: str, limit: int = 400) -> None:
    """Press Tab until ``predicate(document.activeElement)`` holds."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const e = document.activeElement; return !!({predicate}); }}"):
            return
    raise AssertionError(f"Tab never reached {predicate}")


def test_keyboard_reaches_a_device_from_every_chart(page, sample_server):
    for graph_id in GRAPHS:
        open_page(page, sample_server, "/")
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        # the table view's toggle, then its first count link
        tab_to(page, f"e.tagName === 'SUMMARY' && e.closest('#{graph_id}-alt')")
        page.keyboard.press("Enter")
        tab_to(page, f"e.tagName === 'A' && e.closest('#{graph_id}-table')")
        expected = page.evaluate("() => document.activeElement.getAttribute('href')")
        count = int(page.evaluate("() => document.activeElement.textContent").replace(",", ""))
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: urlsplit(url).path == "/devices")
        assert urlsplit(page.url).path + "?" + urlsplit(page.url).query == expected
        wait_for_dash(page)
        assert page.get_attribute("#devices-count", "data-count") == str(count), graph_id
        page.wait_for_selector("#devices-grid a.device-link")
        # the grid is one Tab stop; Enter on a row's cell opens its device
        tab_to(page, "e.classList.contains('ag-cell')")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/device/" in url)
        wait_for_dash(page)
        assert page.locator("#device-name").is_visible(), graph_id


def test_keyboard_focus_lands_on_the_labelled_dropdown(page, sample_server):
    open_page(page, sample_server, "/")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "e.closest && e.closest('.filter-site')")
    page.wait_for_timeout(100)
    focused = page.evaluate("() => [document.activeElement.tagName, document.activeElement.id]")
    assert focused == ["BUTTON", "ovw-site"]


def test_definitions_open_from_the_keyboard(page, sample_server):
    open_page(page, sample_server, "/")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "e.classList.contains('definitions-toggle')")
    assert not page.locator("#ovw-definitions-rules").is_visible()
    page.keyboard.press("Enter")
    assert page.locator("#ovw-definitions-rules").is_visible()
    text = page.inner_text("#ovw-definitions")
    for title in (
        "Enrollment failed",
        "ConfigMgr client inactive",
        "Client active",
        "Co-management policy received",
    ):
        assert title in text
    assert "Why the prerequisite's inactive count differs from the rule's" in text
    assert "14 days" in text  # the configured threshold, not a setting's name


def test_focus_ring_on_the_dark_navbar(page, sample_server):
    open_page(page, sample_server, "/")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "e.classList.contains('nav-link')")
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement); "
        "return [s.outlineStyle, s.outlineColor, s.outlineWidth]; }"
    )
    assert outline[0] == "solid" and outline[1] == "rgb(255, 255, 255)", outline
    assert float(outline[2].rstrip("px")) >= 2


# -- charts look clickable, and do not zoom ------------------------------------------------


def test_charts_say_they_are_clickable_and_do_not_zoom(page, sample_server):
    open_page(page, sample_server, "/")
    bar = page.locator("#ovw-reasons .bars .point").first
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#ovw-reasons .hoverlayer .hovertext")
    assert "Click to list the devices" in page.text_content("#ovw-reasons .hoverlayer")
    page.wait_for_function(
        "() => document.querySelector('#ovw-reasons .nsewdrag').classList.contains('mark-hover')"
    )
    cursor = "() => getComputedStyle(document.querySelector('#ovw-reasons .nsewdrag')).cursor"
    assert page.evaluate(cursor) == "pointer"
    before = page.evaluate(
        "() => document.querySelector('#ovw-reasons .js-plotly-plot')"
        "._fullLayout.xaxis.range.slice()"
    )
    plot = page.locator("#ovw-reasons .nsewdrag").bounding_box()
    page.mouse.move(plot["x"] + plot["width"] - 3, plot["y"] + 3)  # empty space: no pointer
    page.wait_for_function(
        "() => !document.querySelector('#ovw-reasons .nsewdrag').classList.contains('mark-hover')"
    )
    assert page.evaluate(cursor) == "default"
    page.mouse.down()  # a drag from empty space across the bars
    page.mouse.move(plot["x"] + plot["width"] / 3, plot["y"] + plot["height"] / 2, steps=8)
    page.mouse.up()
    page.wait_for_timeout(300)
    after = page.evaluate(
        "() => document.querySelector('#ovw-reasons .js-plotly-plot')"
        "._fullLayout.xaxis.range.slice()"
    )
    assert after == before
    assert urlsplit(page.url).path == "/"  # a drag is not a click


# -- the column chooser -------------------------------------------------------------------


def test_column_chooser_is_remembered_by_the_browser(page, sample_server):
    open_page(page, sample_server, "/devices?site=PS1")
    header = "#devices-grid .ag-header-cell[col-id=policy_age_days]"
    assert page.locator(header).count() == 0
    page.click("#devices-columns-chooser summary")
    page.get_by_label("Days since last policy request").check()
    page.get_by_label("Collections").check()
    page.wait_for_selector(header)
    cell = page.locator("#devices-grid .ag-row .ag-cell[col-id=policy_age_days]").first
    assert re.fullmatch(r"\d+", cell.inner_text().strip())
    assert (
        "All Systems"
        in page.locator("#devices-grid .ag-row .ag-cell[col-id=collections]").first.inner_text()
    )

    page.reload()
    wait_for_dash(page)
    page.wait_for_selector(header)
    page.wait_for_selector("#devices-grid .ag-header-cell[col-id=collections]")
    page.click("#devices-columns-chooser summary")
    assert page.get_by_label("Days since last policy request").is_checked()
    # and off again: the next visit has the default columns
    page.get_by_label("Days since last policy request").uncheck()
    page.get_by_label("Collections").uncheck()
    page.wait_for_selector(header, state="detached")
    page.goto(sample_server + "/devices")
    wait_for_dash(page)
    page.wait_for_selector("#devices-grid .ag-row")
    assert page.locator(header).count() == 0


def test_table_links_match_the_chart_clicks(page, sample_server):
    """The table view's links are the chart's own click targets (same filter, same scope)."""
    open_page(page, sample_server, "/?site=PS2")
    page.wait_for_selector("#ovw-reasons-table a[href*='site=PS2']", state="attached")
    hrefs = page.locator("#ovw-reasons-table a").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))"
    )
    assert hrefs and all(parse_qs(urlsplit(h).query).get("site") == ["PS2"] for h in hrefs)
    bar = page.locator("#ovw-reasons .bars .point").first
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(lambda url: urlsplit(url).path == "/devices")
    assert urlsplit(page.url).path + "?" + urlsplit(page.url).query == hrefs[0]

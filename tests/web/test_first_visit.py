"""The overview's first visit (issue 12: drawn in at most 1.5 s on loopback).

The browser's Dash renderer re-checks every component of the page on every store update, so
the first draw costs (components on the page) x (callback round trips), and a callback's new
children cost (components)^2 (each announces itself to all). The page comes drawn in the
layout, for the URL the layout was asked from, so no callback draws it; each chart's table
view and the definitions panel are sent when first opened; plotly.js, with only the traces
drawn here, is fetched from the start.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import plotly.offline
import pytest

from dashboard.report.capture import wait_for_dash
from dashboard.web import app as web_app
from dashboard.web import panels
from dashboard.web.app import create_app
from dashboard.web.pages import overview
from dashboard.web.pages.overview import GRAPHS
from tests.helpers import router_request
from tests.web.test_browser_overview import choose

PLOTLY_JS = "/_dash-component-suites/plotly/package_data/plotly.min.js"


def walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            yield from walk(child)


def ids(tree) -> set:
    return {getattr(c, "id", None) for c in walk(tree)} - {None}


# -- the layout holds the page -----------------------------------------------------------------


def test_layout_is_drawn_for_the_url_scope(factory_store, factory_settings):
    page = overview.layout(factory_store, factory_settings, "/", {"site": ["PS2"]})
    out = overview.render(factory_store, factory_settings, "PS2", None)
    found = {c.id: c for c in walk(page) if getattr(c, "id", None)}
    assert found["ovw-scope"].children == out["ovw-scope"]
    assert found["ovw-scope"].children.startswith(f"{factory_store.summary('PS2')['devices']:,}")
    for graph_id in GRAPHS:
        assert found[graph_id].figure == out[graph_id]
        assert found[f"{graph_id}-summary"].children == out[f"{graph_id}-summary"]
    tiles = found["ovw-kpis"].children
    assert all("site=PS2" in tile.children.href for tile in tiles)
    assert found["ovw-changes"].children is not None


def test_table_views_and_definitions_are_sent_when_opened(factory_store, factory_settings):
    page = overview.layout(factory_store, factory_settings, "/", {})
    present = ids(page)
    for graph_id in GRAPHS:
        assert f"{graph_id}-view-toggle" in present
        assert f"{graph_id}-table" not in present
    assert "ovw-definitions-toggle" in present
    assert "ovw-definitions-rules" not in present
    assert "ovw-definitions-rules" in ids(panels.definitions_body(factory_settings))
    # an opened table: its links carry the page's scope, like a click on the chart
    table = overview.open_table(factory_store, factory_settings, "ovw-reasons", "PS1", None)
    hrefs = [c.href for c in walk(table) if getattr(c, "href", None)]
    assert table.id == "ovw-reasons-table"
    assert hrefs and all(parse_qs(urlsplit(h).query)["site"] == ["PS1"] for h in hrefs)
    # a re-render keeps the opened tables (only) current
    out = overview.render(factory_store, factory_settings, "PS2", None, opened=["ovw-funnel"])
    assert out["ovw-funnel-view-body"].id == "ovw-funnel-table"
    assert "ovw-reasons-table" not in ids(out["ovw-reasons-view-body"])


def test_content_is_sent_at_every_opening():
    assert [overview.opening(n) for n in (None, 0, 1, 2, 3)] == [False, False, True, False, True]


def test_plotly_is_preloaded_only_where_charts_are(factory_store, factory_settings):
    client = create_app(factory_settings, factory_store).server.test_client()
    for path, charts in (("/", True), ("/trends?site=PS1", True), ("/devices", False)):
        html = client.get(path).get_data(as_text=True)
        head = html.split("</head>")[0]
        assert (f'<link rel="preload" href="{PLOTLY_JS}" as="script">' in head) is charts, path


def layout_ids(client, referer: str | None) -> set[str]:
    headers = {"Referer": referer} if referer else {}
    response = client.get("/_dash-layout", headers=headers)
    assert response.status_code == 200
    return set(re.findall(r'"id": ?"([^"]+)"', response.get_data(as_text=True)))


def test_the_layout_comes_with_the_page_it_was_asked_from(factory_store, factory_settings):
    client = create_app(factory_settings, factory_store).server.test_client()
    drawn = layout_ids(client, "http://localhost/?site=PS2")
    assert {"overview", "ovw-scope", *GRAPHS} <= drawn
    assert layout_ids(client, "http://localhost/devices?site=PS2") >= {"devices-grid"}
    # no Referer, another host's, or not a page's: the router callback draws the page
    for referer in (None, "http://evil.example/?site=PS2", "about:blank"):
        assert "overview" not in layout_ids(client, referer), referer
    # a URL the pages refuse (too many filter values): the layout still loads, without the
    # page, and the router says why (400), as for any navigation
    crowded = "http://localhost/devices?" + "&".join(f"error=0x{i:08X}" for i in range(600))
    assert "devices-grid" not in layout_ids(client, crowded)
    layout = client.get(
        "/_dash-layout", headers={"Referer": "http://localhost/?site=PS2"}
    ).get_json()
    found = [layout]
    while found:  # the page's key: the router leaves this page as it is
        node = found.pop()
        if isinstance(node, dict):
            if node.get("props", {}).get("id") == "page-for":
                assert node["props"]["data"] == "/?site=PS2"
                break
            found.extend(node.values())
        elif isinstance(node, list):
            found.extend(node)
    else:
        raise AssertionError("no page-for store in the layout")


def test_the_router_draws_only_what_the_layout_did_not(factory_store, factory_settings):
    app = create_app(factory_settings, factory_store)
    client = app.server.test_client()

    def route(pathname, search, drawn_for):
        body = router_request(pathname, search, drawn_for)
        return client.post("/_dash-update-component", json=body)

    assert route("/", "?site=PS2", "/?site=PS2").status_code == 204  # drawn by the layout
    moved = route("/devices", "", "/?site=PS2")
    assert moved.status_code == 200
    assert moved.get_json()["response"]["page-for"]["data"] == "/devices"
    assert route("/", "?site=PS2", None).status_code == 200  # no Referer: drawn here
    assert web_app.location_key("/", "") == "/"


# -- the partial plotly.js -------------------------------------------------------------------


def bundle_text() -> str:
    return web_app.PLOTLY_BUNDLE.read_text(encoding="utf-8")


def test_the_plotly_bundle_is_the_version_plotly_py_draws_for():
    banner = re.match(r"/\*! plotly\.js v(\S+) ", bundle_text())
    assert banner is not None
    assert banner.group(1) == plotly.offline.get_plotlyjs_version()


def figure_traces(tree) -> set[str]:
    types = set()
    for component in walk(tree):
        figure = getattr(component, "figure", None)
        if figure is not None:
            data = figure["data"] if isinstance(figure, dict) else figure.data
            types |= {t["type"] if isinstance(t, dict) else t.type for t in data}
    return types


def test_the_plotly_bundle_holds_every_trace_the_pages_draw(sample_store, sample_settings):
    registered = set(re.findall(r'moduleType:"trace",name:"(\w+)"', bundle_text()))
    drawn = set()
    for path in ("/", "/trends", "/report"):
        drawn |= figure_traces(web_app.route(sample_store, sample_settings, path, ""))
    assert drawn >= {"bar", "pie", "funnel", "scatter"}  # what the pages draw today
    assert drawn <= registered


def test_plotly_is_served_from_the_partial_bundle(factory_store, factory_settings):
    client = create_app(factory_settings, factory_store).server.test_client()
    response = client.get(PLOTLY_JS, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert len(response.data) < 500_000  # the full bundle: 1.4 MB compressed
    again = client.get(
        PLOTLY_JS,
        headers={"Accept-Encoding": "gzip", "If-None-Match": response.headers["ETag"]},
    )
    assert again.status_code == 304  # a repeat visit revalidates, as for Dash's own files


# -- in the browser ----------------------------------------------------------------------------


@pytest.mark.browser
def test_first_visit_needs_no_round_trip_after_the_layout(page, sample_server):
    outputs: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: (
            outputs.append((json.loads(r.request.post_data)["output"], r.status))
            if "/_dash-update-component" in r.url
            else None
        ),
    )
    page.goto(sample_server + "/?site=PS1")
    wait_for_dash(page, graphs=len(GRAPHS))
    page.wait_for_timeout(500)  # a late callback would be sent by now
    routed = [status for output, status in outputs if "page.children" in output]
    assert routed == [204]  # the layout came with the page: the router leaves it
    assert [o for o, _ in outputs if "page.children" not in o and "nav-" not in o] == []
    assert page.inner_text("#kpi-devices") != "-"
    assert "site PS1" in page.inner_text("#ovw-scope")
    requests = [urlsplit(url).path for url in page.watch.requests]
    assert requests.count(PLOTLY_JS) == 1  # preloaded, then taken from the cache
    assert requests.index(PLOTLY_JS) < requests.index("/_dash-layout")
    assert page.watch.errors == []


@pytest.mark.browser
def test_an_open_table_follows_the_filter(page, sample_server):
    page.goto(sample_server + "/")
    wait_for_dash(page, graphs=len(GRAPHS))
    assert page.locator("#ovw-reasons-view").inner_text().strip() == "View as table"
    page.click("#ovw-reasons-view summary")
    page.wait_for_selector("#ovw-reasons-table a")
    choose(page, "ovw-site", "PS2")
    page.wait_for_selector("#ovw-reasons-table a[href*='site=PS2']", state="attached")
    wait_for_dash(page)
    hrefs = page.locator("#ovw-reasons-table a").evaluate_all(
        "els => els.map(e => e.getAttribute('href'))"
    )
    assert hrefs and all(parse_qs(urlsplit(h).query).get("site") == ["PS2"] for h in hrefs)
    assert page.locator("#ovw-funnel-table").count() == 0  # never opened: never sent
    # closed and opened again: the table stays while it is sent again
    page.click("#ovw-reasons-view summary")
    page.click("#ovw-reasons-view summary")
    assert page.locator("#ovw-reasons-table a[href*='site=PS2']").count() == len(hrefs)


@pytest.mark.browser
def test_tables_opened_in_quick_succession_all_arrive(page, sample_server):
    page.goto(sample_server + "/")
    wait_for_dash(page, graphs=len(GRAPHS))
    for toggle in page.locator(".chart-table-view:not([hidden]) summary").all():
        toggle.click()
    for graph_id in GRAPHS:
        page.wait_for_selector(f"#{graph_id}-table a", state="attached")

"""The overview in a real headless Chromium against the real app on waitress.

Every number drawn is read back from the page (plotly's own figure data on each graph div,
the tiles' and table's text) and compared with ``comanage-dashboard summary --format json``
run as a separate process for the same config and filter.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from dashboard.labels import (
    AUTHORITY_LABELS,
    FUNNEL_LABELS,
    REASON_LABELS,
    WORKLOAD_LABELS,
    enrollment_status_labels,
)
from dashboard.model.kpis import attention_devices
from dashboard.report.capture import serving, wait_for_dash
from dashboard.service.store import EstateStore
from dashboard.web.app import create_app
from dashboard.web.pages.overview import GRAPHS

pytestmark = pytest.mark.browser

READ_GRAPH = """id => {
  const div = document.querySelector('#' + id + ' .js-plotly-plot');
  if (!div || !div.data) return null;
  const list = v => (v == null ? null : Array.from(v));
  return {
    traces: div.data.map(t => ({type: t.type, name: t.name, labels: list(t.labels),
      values: list(t.values), x: list(t.x), y: list(t.y), customdata: list(t.customdata)})),
    annotations: (div.layout.annotations || []).map(a => a.text),
    empty: (div.layout.meta || {}).empty || null,
  };
}"""


def filter_collection(settings) -> str:
    """The collection the filtered tests use: the first named one that is not All Systems."""
    others = [c for c in settings.collections if c != "SMS00001"]
    return (others or list(settings.collections))[0]


def open_overview(page, base: str, search: str = "") -> None:
    page.goto(base + "/" + search)
    wait_for_dash(page, graphs=len(GRAPHS))


def wait_for_devices(page, count: int) -> None:
    """Until the page shows the filter with ``count`` devices and nothing is loading."""
    page.wait_for_function(
        "n => (document.getElementById('ovw-scope') || {}).textContent?.startsWith(n + ' devices')",
        arg=f"{count:,}",
    )
    page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')")
    page.wait_for_function(  # and every graph has drawn the new figure: the OS donut's
        # client devices and the records it leaves out add up to the devices
        """n => {
          const div = document.querySelector('#ovw-os-groups .js-plotly-plot');
          if (!div || !div.data) return false;
          const values = (div.data[0] || {}).values || [];
          const note = document.getElementById('ovw-without-client');
          if (!note) return false;
          const without = Number(note.dataset.count);
          return Array.from(values).reduce((a, b) => a + b, 0) + without === n;
        }""",
        arg=count,
    )


def number(text: str) -> int:
    return int(text.strip().replace(",", ""))


def drawn(page) -> dict:
    """Everything the overview draws, keyed like the summary."""
    graphs = {graph_id: page.evaluate(READ_GRAPH, graph_id) for graph_id in GRAPHS}

    def pairs(graph_id, keys=("labels", "values")) -> dict:
        out = {}
        for trace in graphs[graph_id]["traces"]:
            out.update(zip(trace[keys[0]], trace[keys[1]], strict=True))
        return out

    tiles = {
        tile: number(page.inner_text(f"#{tile}"))
        for tile in (
            "kpi-devices",
            "kpi-comanaged",
            "kpi-eligible",
            "kpi-failures",
            "kpi-attention",
        )
    }
    rows = page.locator("#ovw-errors-table tbody tr")
    errors = [
        (
            number(rows.nth(i).locator("td").nth(0).inner_text()),
            rows.nth(i).locator("td").nth(2).inner_text().strip(),
        )
        for i in range(rows.count())
    ]
    legend = page.locator("#ovw-os-group-table tr")
    legend_rows = {
        legend.nth(i).locator("td").nth(0).inner_text().strip(): number(
            legend.nth(i).locator("td").nth(1).inner_text()
        )
        for i in range(legend.count())
    }
    note = page.locator("#ovw-without-client")
    without = note.inner_text().strip() if note.count() else ""
    return {
        "without_client": number(without.split(" ")[0]) if without[:1].isdigit() else 0,
        "os_groups": pairs("ovw-os-groups"),
        "os_group_table": legend_rows,
        "os_groups_center": graphs["ovw-os-groups"]["annotations"],
        "os_releases": pairs("ovw-os-releases", ("y", "x")),
        "funnel": pairs("ovw-funnel", ("y", "x")),
        "status": pairs("ovw-status"),
        "status_center": graphs["ovw-status"]["annotations"],
        "workloads": {
            t["name"]: dict(zip(t["y"], t["x"], strict=True))
            for t in graphs["ovw-workloads"]["traces"]
        },
        "reasons": pairs("ovw-reasons", ("y", "x")),
        "reason_texts": page.evaluate(  # the numbers drawn in the SVG itself
            "[...document.querySelectorAll('#ovw-reasons .bars .point text')]"
            ".map(t => t.textContent)"
        ),
        "tiles": tiles,
        "errors": errors,
    }


def expected(summary: dict, settings) -> dict:
    status = summary["enrollment_status"]
    labels = enrollment_status_labels(settings.status_labels)
    reasons = summary["not_comanaged_reasons"]
    clients = summary["devices"] - summary["without_client"]  # what the OS figures count
    return {
        "without_client": summary["without_client"],
        "os_groups": {k: v for k, v in summary["os_groups"].items() if v},
        "os_group_table": summary["os_groups"],
        "os_groups_center": [f"<b>{clients:,}</b><br>client devices"],
        "os_releases": summary["os_releases"],
        "funnel": {FUNNEL_LABELS[k]: v for k, v in summary["funnel"].items()},
        "status": {labels[k]: v for k, v in status.items() if v},
        "status_center": [f"<b>{sum(status.values()):,}</b><br>targeted"],
        "workloads": {
            label: {WORKLOAD_LABELS[k]: counts[a] for k, counts in summary["workloads"].items()}
            for a, label in AUTHORITY_LABELS.items()
        },
        "reasons": {REASON_LABELS[k]: v for k, v in reasons.items()},
        "reason_texts": [f"{v:,}" for v in reasons.values()],
        "tiles": {
            "kpi-devices": summary["devices"],
            "kpi-comanaged": summary["comanaged"],
            "kpi-eligible": summary["funnel"]["eligible"] - summary["funnel"]["enrolled"],
            "kpi-failures": status["failure_hybrid"] + status["failure_aad"],
            "kpi-attention": attention_devices(summary),
        },
        "errors": [(e["count"], e["code"]) for e in summary["enrollment_errors"]],
    }


POINT_IN_SHAPE = """([selector, index, hitTest]) => {
  const shape = document.querySelectorAll(selector)[index];
  const box = shape.getBBox(), matrix = shape.getScreenCTM();
  for (let step = 0; step <= 8; step++) {  // from the centre outwards, until inside the shape
    for (const [fx, fy] of [[0.5, 0.5 - step / 20], [0.5 + step / 20, 0.5],
                            [0.5, 0.5 + step / 20], [0.5 - step / 20, 0.5]]) {
      const point = new DOMPoint(box.x + fx * box.width, box.y + fy * box.height);
      if (!shape.isPointInFill(point)) continue;
      const screen = point.matrixTransform(matrix);
      if (!hitTest || document.elementFromPoint(screen.x, screen.y) === shape) {
        return {x: screen.x, y: screen.y};
      }
    }
  }
  return null;
}"""


def click_shape(page, selector: str, index: int, hit_test: bool = True) -> None:
    """A real mouse click on a point inside an SVG shape (a donut's centre is its hole).

    Cartesian plots take clicks on the drag layer above the bars (``hit_test=False``): plotly
    finds the bar under the pointer itself.
    """
    page.locator(selector).nth(index).scroll_into_view_if_needed()
    point = page.evaluate(POINT_IN_SHAPE, [selector, index, hit_test])
    assert point, f"no clickable point in {selector} #{index}"
    page.mouse.move(point["x"], point["y"])
    page.mouse.click(point["x"], point["y"])


def choose(page, dropdown_id: str, label: str) -> None:
    """Pick an option in a Dash 4 dropdown the way a user does."""
    page.click(f"#{dropdown_id} .dash-dropdown-trigger")
    page.locator(".dash-dropdown-option[role=option]", has_text=label).first.click()


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# -- tests -------------------------------------------------------------------------------------


def test_ovw001_loads_without_console_errors_or_outside_requests(page, sample_server):
    open_overview(page, sample_server)
    page.wait_for_timeout(300)
    assert page.title() == "Co-management"
    assert page.watch.errors == []
    outside = [
        url
        for url in page.watch.requests
        if not url.startswith(sample_server) and not url.startswith("data:")
    ]
    assert outside == []
    links = ["Overview", "Trends", "Devices", "Intune only"]  # the sample has an Intune source
    assert page.locator("nav .nav-link").all_inner_texts() == links
    assert page.inner_text("#data-as-of")


@pytest.mark.parametrize("filtered", [False, True], ids=["all", "collection"])
def test_ovw002_every_number_equals_the_cli(
    page, cli_summary, sample_server, sample_config, sample_settings, filtered
):
    collection = filter_collection(sample_settings) if filtered else None
    summary = cli_summary(sample_config, collection=collection)
    open_overview(page, sample_server, f"?collection={collection}" if collection else "")
    wait_for_devices(page, summary["devices"])
    assert drawn(page) == expected(summary, sample_settings)
    assert page.watch.errors == []


def test_ovw003_filter_change_updates_every_chart_and_the_url(
    page, cli_summary, sample_server, sample_config, sample_settings
):
    collection = filter_collection(sample_settings)
    everything = cli_summary(sample_config)
    filtered = cli_summary(sample_config, collection=collection)
    assert filtered["devices"] != everything["devices"]
    open_overview(page, sample_server)
    wait_for_devices(page, everything["devices"])

    choose(page, "ovw-collection", f"({collection})")
    page.wait_for_url(re.compile(rf"/\?collection={collection}$"))
    wait_for_devices(page, filtered["devices"])
    assert drawn(page) == expected(filtered, sample_settings)

    page.go_back()  # the back button restores the unfiltered view and the dropdown
    page.wait_for_url(re.compile(r"/$"))
    wait_for_devices(page, everything["devices"])
    assert page.inner_text("#ovw-collection").strip() == "All collections"
    assert drawn(page) == expected(everything, sample_settings)

    page.go_forward()
    wait_for_devices(page, filtered["devices"])
    assert f"({collection})" in page.inner_text("#ovw-collection")
    assert page.watch.errors == []


def test_ovw004_loading_the_url_restores_the_filter(
    page, cli_summary, sample_server, sample_config, sample_settings
):
    collection = filter_collection(sample_settings)
    site = sample_settings.sources[0].site
    summary = cli_summary(sample_config, collection=collection, site=site)
    open_overview(page, sample_server, f"?site={site}&collection={collection}")
    wait_for_devices(page, summary["devices"])
    assert page.inner_text("#ovw-site").strip() == site
    assert f"({collection})" in page.inner_text("#ovw-collection")
    assert drawn(page) == expected(summary, sample_settings)


def test_ovw005_chart_clicks_open_the_device_list(
    page, cli_summary, sample_server, sample_config, sample_settings
):
    collection = filter_collection(sample_settings)
    summary = cli_summary(sample_config, collection=collection)
    open_overview(page, sample_server, f"?collection={collection}")
    wait_for_devices(page, summary["devices"])

    # a donut slice: a real click on its path
    labels = page.evaluate(READ_GRAPH, "ovw-os-groups")["traces"][0]["labels"]
    click_shape(page, "#ovw-os-groups .slice path.surface", 0)
    page.wait_for_url("**/devices?**")
    group = labels[0].replace(" ", "%20").replace("&", "%26")
    assert path_and_query(page.url) == (
        f"/devices?os_group={group}&client=1&collection={collection}"
    )
    # exactly the devices the slice counts: client devices of that group
    page.wait_for_selector("#devices-count")
    assert (
        number(page.get_attribute("#devices-count", "data-count"))
        == summary["os_groups"][labels[0]]
    )

    page.go_back()  # back on the overview, with its filter
    page.wait_for_url(re.compile(rf"/\?collection={collection}$"))
    wait_for_devices(page, summary["devices"])

    # a stacked bar: plotly takes clicks on its drag layer, so click at the bar's centre
    trace = page.evaluate(READ_GRAPH, "ovw-workloads")["traces"][2]  # Intune
    index = next(i for i, x in enumerate(trace["x"]) if x)
    click_shape(
        page, "#ovw-workloads .trace.bars:nth-of-type(3) .point path", index, hit_test=False
    )
    page.wait_for_url("**/devices?**")
    workload = next(k for k, label in WORKLOAD_LABELS.items() if label == trace["y"][index])
    assert path_and_query(page.url) == (
        f"/devices?workload={workload}&authority=intune&collection={collection}"
    )
    assert page.watch.errors == []


def test_ovw006_tiles_and_error_rows_are_links(
    page, cli_summary, sample_server, sample_config, sample_settings
):
    summary = cli_summary(sample_config)
    open_overview(page, sample_server)
    wait_for_devices(page, summary["devices"])
    page.click("#kpi-attention")
    page.wait_for_url("**/devices?attention=any")
    page.go_back()
    wait_for_devices(page, summary["devices"])
    if summary["enrollment_errors"]:
        code = summary["enrollment_errors"][0]["code"]
        cell = page.locator("#ovw-errors-table tbody tr").nth(0).locator("td").nth(3)
        cell.scroll_into_view_if_needed()
        box = cell.bounding_box()  # the description cell: not the link's own text
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_url(f"**/devices?error={code}")  # the whole row is the link
    assert page.watch.errors == []


def test_ovw007_unknown_filters_are_ignored_with_a_note(
    page, cli_summary, sample_server, sample_config
):
    summary = cli_summary(sample_config)
    open_overview(page, sample_server, "?site=NOPE&collection=%3Cb%3EX%3C%2Fb%3E")
    wait_for_devices(page, summary["devices"])
    note = page.inner_text("#ovw-filter-note")
    assert 'Unknown site "NOPE" ignored' in note
    assert 'Unknown collection "<b>X</b>" ignored' in note  # shown as text
    assert page.inner_text("#ovw-site").strip() == "All sites"


def test_ovw008_device_text_stays_text_and_header_warns(
    page, cli_summary, factory_server, factory_config
):
    """The factory estate: a dropped row and an error detail that looks like HTML."""
    summary = cli_summary(factory_config)
    open_overview(page, factory_server)
    wait_for_devices(page, summary["devices"])
    assert page.evaluate("window.__xss") is None
    assert '<img src=x onerror="window.__xss=1">' in page.inner_text("#ovw-errors-table")
    warning = page.inner_text(".dropped-warning")
    assert "Site PS1: 1 of 400 rows were dropped at load" in warning
    assert "PS1: CSV, 400 rows, 1 dropped" in page.inner_text("#data-status")
    assert page.watch.errors == []


def test_ovw009_unknown_path_is_a_proper_page(page, sample_server):
    page.goto(sample_server + "/no/such/page")
    page.wait_for_selector("#not-found")
    assert "Page not found" in page.inner_text("#not-found")
    page.click("#not-found a")
    page.wait_for_selector("#ovw-kpis .kpi-card")
    assert path_and_query(page.url) == "/"


def test_ovw010_no_devices_message(
    page, cli_summary, factory_server, factory_settings, factory_store
):
    """A site and collection that exist but share no device: messages, not empty axes."""
    site, collection = None, None
    for candidate_site in [s.site for s in factory_settings.sources]:
        for candidate in factory_settings.collections:
            if factory_store.summary(candidate_site, candidate)["devices"] == 0:
                site, collection = candidate_site, candidate
    if site is None:  # the factory has none: use an empty selection through the API instead
        pytest.fail("the factory estate should have an empty site/collection pair")
    open_overview(page, factory_server, f"?site={site}&collection={collection}")
    page.wait_for_function(
        "() => document.getElementById('ovw-scope').textContent.startsWith('0 devices')"
    )
    for graph_id in GRAPHS:
        assert page.evaluate(READ_GRAPH, graph_id)["empty"] == "No devices match this filter"
    assert page.inner_text("#ovw-errors").strip() == "No devices match this filter"


def test_ovw011_refresh_now_brings_new_data_and_a_failure_shows_stale(
    page, factory_settings, factory_store, sample_store
):
    """Refresh off the request path: the old data stays until the new is in; then stale."""
    first, second = factory_store.estate, sample_store.estate
    loads = iter([first, second])

    def loader(settings):
        try:
            return next(loads)
        except StopIteration:
            raise OSError("PS1/devices.csv: permission denied") from None

    store = EstateStore(factory_settings, loader=loader)
    store.manual_refresh_seconds = 0  # two clicks in a row (the throttle has its own test)
    assert store.refresh()
    store.start()  # the background thread: next scheduled load in an hour
    try:
        with serving(create_app(factory_settings, store)) as base:
            open_overview(page, base)
            wait_for_devices(page, len(first.devices))
            page.click("#refresh-button")
            wait_for_devices(page, len(second.devices))  # polled, no reload
            assert page.locator("#stale-banner").count() == 0
            page.click("#refresh-button")
            page.wait_for_selector("#stale-banner", timeout=15_000)
            banner = page.inner_text("#stale-banner")
            assert "Data is stale since" in banner
            assert "PS1/devices.csv: permission denied" in banner
            assert page.inner_text("#ovw-scope").startswith(f"{len(second.devices):,} devices")
    finally:
        store.stop()
    assert page.watch.errors == []


def test_ovw012_os_chart_names_and_links_the_records_it_leaves_out(
    page, cli_summary, sample_server, sample_config
):
    """The OS figures count client devices (the console's tile does); the note under the
    donut says how many records are left out and opens exactly those."""
    summary = cli_summary(sample_config)
    assert summary["without_client"] > 0  # the bundled sample has discovery-only records
    open_overview(page, sample_server)
    wait_for_devices(page, summary["devices"])
    note = page.locator("#ovw-without-client a")
    assert note.inner_text() == (
        f"{summary['without_client']:,} records without the ConfigMgr client are not counted"
    )
    releases = page.evaluate(READ_GRAPH, "ovw-os-releases")["traces"]
    assert all(
        fragment.endswith("&client=1") for trace in releases for fragment in trace["customdata"]
    )
    note.click()
    page.wait_for_url("**/devices?client=0")
    page.wait_for_selector("#devices-count")
    assert number(page.get_attribute("#devices-count", "data-count")) == summary["without_client"]
    assert "ConfigMgr client: not installed" in page.inner_text("#devices-chips")
    assert page.watch.errors == []


@pytest.mark.browser
def test_ovw013_freshness_and_a_throttled_refresh_now(
    page, factory_settings, factory_store, tmp_path
):
    """The header says when the data was loaded and when the next refresh is due; "Refresh
    now" shows its progress and result, then stays disabled until the next is possible; data
    loaded longer ago than stale_after_hours is flagged."""
    import time

    loads = []

    def loader(settings):
        loads.append(time.time())
        if len(loads) > 1:
            time.sleep(1.5)  # long enough to see the progress
        return factory_store.estate

    settings = factory_settings.with_values(refresh_minutes=30)
    store = EstateStore(settings, loader=loader)
    assert store.refresh()
    store.start()
    try:
        with serving(create_app(settings, store)) as base:
            open_overview(page, base)
            loaded = page.inner_text("#data-loaded")
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", loaded)
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", page.inner_text("#next-refresh"))
            assert page.locator("#old-data-warning").count() == 0
            assert page.is_enabled("#refresh-button")
            page.click("#refresh-button")
            page.wait_for_function(
                "() => /Refresh(ing| requested)/.test("
                "document.getElementById('refresh-note').textContent)"
            )
            assert page.is_disabled("#refresh-button")
            page.wait_for_function(
                "() => document.getElementById('refresh-note')"
                ".textContent.startsWith('Refreshed at')",
                timeout=20_000,
            )
            note = page.inner_text("#refresh-note")
            assert f"{len(factory_store.estate.devices):,} devices" in note
            assert "Next manual refresh possible at" in note
            assert page.is_disabled("#refresh-button")
            assert page.get_attribute("#refresh-button", "title").startswith(
                "Next manual refresh possible at"
            )
            page.screenshot(path=str(tmp_path / "freshness.png"))
            # another page of the same server (another user) is throttled too
            other = page.context.new_page()
            other.goto(base + "/devices")
            other.wait_for_selector("#refresh-button")
            other.wait_for_function("() => document.getElementById('refresh-button').disabled")
            assert len(loads) == 2
            # data loaded long ago: flagged
            store._loaded_at = time.time() - 30 * 3600
            store._version += 1  # the next poll redraws the header
            page.wait_for_selector("#old-data-warning", timeout=20_000)
            assert "longer ago than the 24 hours set in stale_after_hours" in page.inner_text(
                "#old-data-warning"
            )
    finally:
        store.stop()
    assert page.watch.errors == []

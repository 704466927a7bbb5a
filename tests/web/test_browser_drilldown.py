"""Drill-down from the overview into unhealthy devices, in a real headless Chromium (issue 4).

From a chart, a panel or a tile to the device list, through the grid's server-side paging and
sorting, to the CSV export and one device's page. Every number is compared with
``comanage-dashboard summary --format json`` (a separate process) or, for rows, with the
server's own answer for the same request.
"""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_browser_overview import (
    READ_GRAPH,
    choose,
    click_shape,
    filter_collection,
    open_overview,
    path_and_query,
    wait_for_devices,
)

from dashboard.labels import WORKLOAD_LABELS, enrollment_status_labels
from dashboard.model.errors import describe
from dashboard.web.links import parse_query
from dashboard.web.pages import devices

pytestmark = pytest.mark.browser

# Every row the grid has loaded, from AG Grid's own API: (row index, name, site, id).
GRID_ROWS = """async () => {
  const api = await dash_ag_grid.getApiAsync('devices-grid');
  const rows = [];
  api.forEachNode(node => { if (node.data) rows.push([node.rowIndex, node.data.name,
                                                     node.data.site, node.data.resource_id]); });
  return rows.sort((a, b) => a[0] - b[0]);
}"""
PAGING = ".ag-paging-row-summary-panel-number[data-ref={}]"
PUSH_STATE = """href => { window.history.pushState({}, '', href);
                          window.dispatchEvent(new CustomEvent('_dashprivate_pushstate')); }"""
PANEL_ROWS = """table => [...document.querySelectorAll('#' + table + ' tr.dd-row')].map(tr => ({
  key: tr.dataset.rule || tr.dataset.step,
  count: Number(tr.querySelector('[data-count]').dataset.count),
  shown: tr.querySelector('[data-count]').textContent.trim(),
  href: (tr.querySelector('a') || {getAttribute: () => null}).getAttribute('href'),
  title: tr.getAttribute('title'),
}))"""


def device_count(page) -> int:
    page.wait_for_selector("#devices-count")
    return int(page.get_attribute("#devices-count", "data-count"))


def open_devices(page, base: str, query: str) -> int:
    """Open the device list for a query; wait until its first block of rows is drawn."""
    page.goto(f"{base}/devices?{query}" if query else f"{base}/devices")
    count = device_count(page)
    if count:
        page.wait_for_selector("#devices-grid .ag-row .device-link")
    return count


def grid_rows(page, first: int, last: int) -> list[list]:
    """Rows ``first`` to ``last`` (0-based, inclusive) once the grid has loaded them all."""
    # Wait and read in one evaluation: the grid may drop and refetch blocks between two.
    deadline = time.monotonic() + 30
    while True:
        rows = [row for row in page.evaluate(GRID_ROWS) if first <= row[0] <= last]
        if len(rows) == last - first + 1 or time.monotonic() > deadline:
            return rows
        page.wait_for_timeout(100)


def server_rows(store, query: str, start: int, end: int, sort=None) -> list[str]:
    pairs = [(k, v) for k, values in parse_query(query).items() for v in values]
    request = {"startRow": start, "endRow": end, **({"sortModel": sort} if sort else {})}
    return [row["name"] for row in devices.get_rows(store, request, pairs)["rowData"]]


def download_csv(page) -> tuple[list[dict], str]:
    """Click "Export CSV" like a user; the downloaded rows and the link's query."""
    href = page.get_attribute("#devices-export", "href")
    with page.expect_download() as info:
        page.click("#devices-export")
    text = Path(info.value.path()).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text))), urlsplit(href).query


# -- from a chart to the list -------------------------------------------------------------------


def test_dd001_chart_slices_and_bars_open_lists_with_the_charts_numbers(
    page, cli_summary, sample_server, sample_config, sample_settings
):
    summary = cli_summary(sample_config)
    labels = enrollment_status_labels(sample_settings.status_labels)
    open_overview(page, sample_server)
    wait_for_devices(page, summary["devices"])

    # the Failure (hybrid) slice of the enrollment-status donut
    status = page.evaluate(READ_GRAPH, "ovw-status")["traces"][0]
    index = status["labels"].index(labels["failure_hybrid"])
    drawn_number = status["values"][index]
    assert drawn_number == summary["enrollment_status"]["failure_hybrid"]
    click_shape(page, "#ovw-status .slice path.surface", index)
    page.wait_for_url("**/devices?**")
    assert path_and_query(page.url) == "/devices?enrollment_status=failure_hybrid"
    assert device_count(page) == drawn_number
    assert page.inner_text("#devices-count") == f"{drawn_number:,} devices match"
    page.wait_for_function(  # the grid's own total, once its first block came back
        f"() => /^[0-9,]+$/.test(document.querySelector('{PAGING.format('lbRecordCount')}')"
        "?.textContent || '')"
    )
    assert int(page.inner_text(PAGING.format("lbRecordCount")).replace(",", "")) == drawn_number

    page.go_back()
    wait_for_devices(page, summary["devices"])

    # the Pilot Intune part of the Office Click-to-Run apps bar
    workload = "office_click_to_run_apps"
    trace = page.evaluate(READ_GRAPH, "ovw-workloads")["traces"][1]
    assert trace["name"] == "Pilot Intune"
    index = trace["y"].index(WORKLOAD_LABELS[workload])
    drawn_number = trace["x"][index]
    assert drawn_number == summary["workloads"][workload]["pilot_intune"] > 0
    click_shape(
        page, "#ovw-workloads .trace.bars:nth-of-type(2) .point path", index, hit_test=False
    )
    page.wait_for_url("**/devices?**")
    assert path_and_query(page.url) == f"/devices?workload={workload}&authority=pilot_intune"
    assert device_count(page) == drawn_number
    assert page.watch.errors == []


# -- the grid: paging, sorting, export ----------------------------------------------------------


def test_dd002_next_page_shows_rows_101_to_200(page, sample_server, sample_store):
    query = "enrollment_status=failure_hybrid"
    count = open_devices(page, sample_server, query)
    assert count > 200
    assert page.inner_text(PAGING.format("lbFirstRowOnPage")) == "1"
    assert page.inner_text(PAGING.format("lbLastRowOnPage")) == "100"
    first = grid_rows(page, 0, 99)
    assert [row[1] for row in first] == server_rows(sample_store, query, 0, 100)

    page.click(".ag-paging-button[data-ref=btNext]")
    page.wait_for_function(
        f"() => document.querySelector('{PAGING.format('lbFirstRowOnPage')}').textContent === '101'"
    )
    assert page.inner_text(PAGING.format("lbLastRowOnPage")) == "200"
    assert page.inner_text(".ag-paging-number[data-ref=lbCurrent]") == "2"
    second = grid_rows(page, 100, 199)
    assert [row[1] for row in second] == server_rows(sample_store, query, 100, 200)
    assert not {(r[2], r[3]) for r in first} & {(r[2], r[3]) for r in second}
    shown = page.locator("#devices-grid .ag-row[row-index='100'] .device-link")
    assert shown.inner_text() == second[0][1]  # the page on screen is the second one
    assert page.watch.errors == []


def test_dd003_clicking_the_name_header_sorts_by_name(page, sample_server, sample_store):
    query = "attention=any"
    open_devices(page, sample_server, query)
    page.click("#devices-grid .ag-header-cell[col-id=name] .ag-header-cell-label")
    page.wait_for_selector("#devices-grid .ag-header-cell[col-id=name][aria-sort=ascending]")
    expected = server_rows(sample_store, query, 0, 100, [{"colId": "name", "sort": "asc"}])
    page.wait_for_function(  # the first block came back from the server, sorted
        'name => [...document.querySelectorAll(\'#devices-grid .ag-row[row-index="0"] '
        ".device-link')].some(a => a.textContent === name)",
        arg=expected[0],
    )
    names = [row[1] for row in grid_rows(page, 0, 99)]
    assert names == expected
    assert names[:20] == sorted(names[:20], key=str.lower)
    assert names == sorted(names, key=str.lower)

    page.click("#devices-grid .ag-header-cell[col-id=name] .ag-header-cell-label")
    page.wait_for_selector("#devices-grid .ag-header-cell[col-id=name][aria-sort=descending]")
    expected = server_rows(sample_store, query, 0, 100, [{"colId": "name", "sort": "desc"}])
    page.wait_for_function(
        'name => [...document.querySelectorAll(\'#devices-grid .ag-row[row-index="0"] '
        ".device-link')].some(a => a.textContent === name)",
        arg=expected[0],
    )
    names = [row[1] for row in grid_rows(page, 0, 99)]
    assert names == expected == sorted(names, key=str.lower, reverse=True)
    assert page.watch.errors == []


def test_dd004_csv_export_has_the_lists_rows(page, sample_server, sample_settings):
    site = sample_settings.sources[0].site
    query = f"enrollment_status=failure_hybrid&enrollment_status=failure_aad&site={site}"
    count = open_devices(page, sample_server, query)
    assert count > 0
    rows, export_query = download_csv(page)
    assert parse_query(export_query) == parse_query(query)
    assert len(rows) == count
    labels = enrollment_status_labels(sample_settings.status_labels)
    states = {labels["failure_hybrid"], labels["failure_aad"]}
    assert all(row["State"] in states and row["Site"] == site for row in rows)
    assert all(row["Error code"].startswith("0x") for row in rows)
    assert len({(row["Site"], row["ResourceID"]) for row in rows}) == count

    response = page.request.get(sample_server + "/export/devices.csv?readiness=joined")
    assert response.status == 200
    text = response.text().lstrip("\ufeff")
    assert len(list(csv.DictReader(io.StringIO(text)))) == int(response.headers["x-device-count"])
    assert page.request.get(sample_server + "/export/devices.csv?readiness=bogus").status == 400
    assert page.watch.errors == []


# -- one device ---------------------------------------------------------------------------------


def test_dd005_a_failed_device_shows_its_checklist_and_fix(page, sample_server, sample_store):
    code = "0x8018002A"
    open_devices(page, sample_server, f"error={code}")
    link = page.locator("#devices-grid .ag-row[row-index='0'] .device-link")
    name = link.inner_text()
    link.click()
    page.wait_for_selector("#device-page")
    assert page.inner_text("#device-name") == name
    resource_id = int(re.search(r"/device/(\d+)", page.url).group(1))
    site = parse_query(urlsplit(page.url).query)["site"][0]

    error = page.inner_text("#device-error")
    assert code in error
    assert describe(code).fix in error
    frame = sample_store.estate.devices
    row = frame[(frame["ResourceID"] == resource_id) & (frame["site"] == site)].iloc[0]
    steps = page.locator("#device-checklist li")
    results = [steps.nth(i).get_attribute("data-result") for i in range(steps.count())]
    assert len(results) == 6 and set(results) <= {"pass", "fail", "skipped"}
    failed_step = row["readiness"]
    if isinstance(failed_step, str):
        assert (
            page.get_attribute(f"#device-checklist li[data-step={failed_step}]", "data-result")
            == "fail"
        )
    else:
        assert results == ["pass"] * 6
    assert page.locator("#device-attention li[data-rule=enrollment-failed]").count() == 1
    assert page.watch.errors == []


@pytest.mark.parametrize("path", ["/device/abc", "/device/999999999"])
def test_dd006_unknown_devices_get_a_friendly_page(page, sample_server, path):
    page.goto(sample_server + path)
    page.wait_for_selector("#device-not-found")
    text = page.inner_text("#device-not-found")
    assert "Device not found" in text
    assert page.locator("#device-not-found a[href='/devices']").count() == 1
    page.wait_for_timeout(200)
    assert page.watch.errors == []


# -- the overview's panels ----------------------------------------------------------------------


def test_dd007_panels_equal_the_summary_and_every_link_lists_its_number(
    page, cli_summary, sample_server, sample_config, sample_settings
):
    everything = cli_summary(sample_config)
    open_overview(page, sample_server)
    wait_for_devices(page, everything["devices"])
    attention = page.evaluate(PANEL_ROWS, "ovw-attention-table")
    assert {row["key"]: row["count"] for row in attention} == everything["attention"]
    assert all(row["shown"] == f"{row['count']:,}" and row["title"] for row in attention)
    readiness = page.evaluate(PANEL_ROWS, "ovw-readiness-table")
    assert [(row["key"], row["count"]) for row in readiness] == [
        (step["step"], step["failed"]) for step in everything["readiness"]
    ]
    assert (
        int(page.get_attribute("#ovw-attention-total", "data-count"))
        == everything["attention_devices"]
    )
    assert page.inner_text("#kpi-attention") == f"{everything['attention_devices']:,}"

    collection = filter_collection(sample_settings)  # a filter change re-renders both panels
    summary = cli_summary(sample_config, collection=collection)
    choose(page, "ovw-collection", f"({collection})")
    wait_for_devices(page, summary["devices"])
    attention = page.evaluate(PANEL_ROWS, "ovw-attention-table")
    assert {row["key"]: row["count"] for row in attention} == summary["attention"]
    readiness = page.evaluate(PANEL_ROWS, "ovw-readiness-table")
    assert [(row["key"], row["count"]) for row in readiness] == [
        (step["step"], step["failed"]) for step in summary["readiness"]
    ]
    assert (
        int(page.get_attribute("#ovw-readiness-ready", "data-count"))
        == summary["readiness"][-1]["passed"]
    )
    for rows, key in ((attention, "attention"), (readiness, "readiness")):
        for row in rows:  # a link in the page's scope for every non-zero count, none for zero
            assert row["href"] == (
                f"/devices?{key}={row['key']}&collection={collection}" if row["count"] else None
            )
    links = [(row["href"], row["count"]) for row in attention + readiness if row["href"]]
    links.append(
        (page.get_attribute("#ovw-attention-total a", "href"), summary["attention_devices"])
    )

    # a real click on a row, beside the number: the whole row is the link
    rule = max(attention, key=lambda row: row["count"])["key"]
    cell = page.locator(f"#ovw-attention-table tr[data-rule={rule}] td").first
    cell.scroll_into_view_if_needed()
    box = cell.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(f"**/devices?attention={rule}&collection={collection}")
    assert device_count(page) == summary["attention"][rule]

    for href, number in links:  # then every link's list, routed in the page like a dcc.Link
        page.evaluate(PUSH_STATE, "/device/0")  # (the router runs when the path changes)
        page.wait_for_selector("#device-not-found")
        page.evaluate(PUSH_STATE, href)
        page.wait_for_function(  # the list for exactly this link's filters
            "want => [...document.querySelectorAll('#devices-chips [data-filter]')]"
            ".map(c => c.dataset.filter).join('&') === want",
            arg=href.split("?", 1)[1],
        )
        assert device_count(page) == number, href
    assert page.watch.errors == []


def test_dd008_a_duplicate_record_links_its_keeper(
    page, cli_summary, sample_server, sample_config, sample_store
):
    """From the rule's device list to a duplicate record, on to the record to keep, and back
    through the keeper's list of duplicates."""
    summary = cli_summary(sample_config)
    number = summary["attention"]["duplicate-record"]
    assert number > 0  # the bundled sample holds some
    assert open_devices(page, sample_server, "attention=duplicate-record") == number
    link = page.locator("#devices-grid .ag-row[row-index='0'] .device-link")
    name = link.inner_text()
    link.click()
    page.wait_for_selector("#device-page")
    assert page.locator("#device-attention li[data-rule=duplicate-record]").count() == 1
    resource_id = int(re.search(r"/device/(\d+)", page.url).group(1))
    site = parse_query(urlsplit(page.url).query)["site"][0]
    frame = sample_store.estate.devices
    row = frame[(frame["ResourceID"] == resource_id) & (frame["site"] == site)].iloc[0]
    keeper = frame[(frame["ResourceID"] == row["duplicate_of"]) & (frame["site"] == site)]
    keeper_name = str(keeper["Name"].iloc[0])
    assert keeper_name.lower() == name.lower()
    page.click("#device-keeper")
    page.wait_for_url(f"**/device/{int(row['duplicate_of'])}?site={site}")
    page.wait_for_selector("#device-duplicate-list")
    assert page.inner_text("#device-name") == keeper_name
    assert page.locator("#device-attention li[data-rule=duplicate-record]").count() == 0
    page.click(f"#device-duplicate-list a[href='/device/{resource_id}?site={site}']")
    page.wait_for_url(f"**/device/{resource_id}?site={site}")
    page.wait_for_selector("#device-keeper")
    assert page.watch.errors == []

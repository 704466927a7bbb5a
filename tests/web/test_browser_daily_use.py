"""A day in the admin's chair (issue 12, its defects): each test drives the real app in a
headless Chromium the way a ConfigMgr administrator does, on the bundled sample estate.

The devices the issue names (NYC-LT-001004, LON-LT-001019, LON-LNX-0011, LON-MAC-0016) are
looked up by name in the loaded estate, so the tests do not depend on their ResourceIDs.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import subprocess
import sys
import time
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from test_browser_overview import choose, open_overview, path_and_query

from dashboard.labels import REASON_LABELS, enrollment_status_labels, join_type_label
from dashboard.model.attention import RULES_BY_ID
from dashboard.model.states import ENROLLMENT_STATUSES, REASONS
from dashboard.report.capture import wait_for_dash
from dashboard.web.pages import devices

pytestmark = pytest.mark.browser

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
PAGING = ".ag-paging-row-summary-panel-number[data-ref={}]"
# Every loaded row of the grid with its data, in row order.
GRID_DATA = """async () => {
  const api = await dash_ag_grid.getApiAsync('devices-grid');
  const rows = [];
  api.forEachNode(node => { if (node.data) rows.push([node.rowIndex, node.data]); });
  return rows.sort((a, b) => a[0] - b[0]);
}"""


def device_row(store, name: str):
    frame = store.estate.devices
    return frame[frame["Name"] == name].iloc[0]


def device_path(store, name: str) -> str:
    row = device_row(store, name)
    return f"/device/{int(row['ResourceID'])}?site={row['site']}"


def shown_count(page) -> int:
    page.wait_for_selector("#devices-count")
    return int(page.get_attribute("#devices-count", "data-count"))


def loaded_rows(page, first: int, last: int, timeout: float = 30) -> list[dict]:
    """The data of rows ``first`` to ``last`` (inclusive) once the grid has them all."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [data for index, data in page.evaluate(GRID_DATA) if first <= index <= last]
        if len(rows) == last - first + 1 or time.monotonic() > deadline:
            return rows
        page.wait_for_timeout(100)


def wait_for_first_row(page, name: str) -> None:
    page.wait_for_function(
        'name => [...document.querySelectorAll(\'#devices-grid .ag-row[row-index="0"] '
        ".device-link')].some(a => a.textContent === name)",
        arg=name,
    )


# -- 1 and 4: every sortable column sorts both ways ---------------------------------------------


def _order(column: str, wording: str):
    """The order a user expects for a column, as a key over the shown text: enumerations in
    their defined order (the overview's order), free text alphabetically ignoring case,
    dates in time order; blanks are last in both directions (so: (blank, key))."""
    statuses = enrollment_status_labels(wording)
    enumerations = {
        "severity": ["low", "medium", "high"],
        "state": [statuses[s] for s in ENROLLMENT_STATUSES] + ["Not targeted"],
        "reason": [REASON_LABELS[r] for r in REASONS],
        "join_type": [
            join_type_label("hybrid", wording),
            join_type_label("aad", wording),
            "Not joined",
        ],
        "client_active": ["no", "yes"],
    }
    if column in enumerations:
        values = enumerations[column]
        return lambda text: values.index(text)
    return lambda text: text.lower()


SORTED_COLUMNS = [c["field"] for c in devices.COLUMNS if c.get("sortable", True)]


@pytest.mark.parametrize("column", SORTED_COLUMNS)
def test_ux01_every_column_sorts_both_ways_with_every_row(
    page, sample_server, sample_store, sample_settings, column
):
    query = "q=-00101"  # about 80 devices of both sites, every kind of value among them
    page.goto(f"{sample_server}/devices?{query}")
    count = shown_count(page)
    assert 20 < count <= devices.PAGE_SIZE
    page.wait_for_selector("#devices-grid .ag-row .device-link")
    key = _order(column, sample_settings.status_labels)
    for direction in ("ascending", "descending"):
        sort_by(page, column, direction)
        sort = [{"colId": column, "sort": {"ascending": "asc", "descending": "desc"}[direction]}]
        expected = [
            row["name"]
            for row in devices.get_rows(
                sample_store, {"startRow": 0, "endRow": 100, "sortModel": sort}, [("q", "-00101")]
            )["rowData"]
        ]
        wait_for_first_row(page, expected[0])
        rows = loaded_rows(page, 0, count - 1)
        assert len(rows) == count, f"{column} {direction}: rows missing"
        names = [row["name"] for row in rows]
        assert names == expected
        problems = out_of_order(rows, column, key, direction == "descending")
        assert not problems, f"{column} {direction}: {problems[:3]}"
    # after every column (State included), another sort still answers
    sort_by(page, "name", "ascending")
    wait_for_first_row(page, sorted(names, key=str.lower)[0])
    assert page.watch.errors == []


def sort_by(page, column: str, direction: str) -> None:
    """Click a column's header (scrolled into view) until it sorts that way."""
    page.evaluate(
        "async c => (await dash_ag_grid.getApiAsync('devices-grid')).ensureColumnVisible(c)", column
    )
    header = f"#devices-grid .ag-header-cell[col-id={column}]"
    for _ in range(3):  # unsorted -> ascending -> descending -> unsorted
        if page.get_attribute(header, "aria-sort") == direction:
            return
        page.click(f"{header} .ag-header-cell-label")
        page.wait_for_timeout(150)
    assert page.get_attribute(header, "aria-sort") == direction


def out_of_order(rows: list[dict], column: str, key, descending: bool) -> list:
    """Neighbouring rows in the wrong order: blanks last either way, ties by name."""
    wrong = []
    for before, after in itertools.pairwise(rows):
        a, b = before[column], after[column]
        if a == "" and b != "":
            wrong.append((a, b))
        elif a != "" and b != "" and key(a) != key(b):
            if (key(a) > key(b)) != descending:
                wrong.append((a, b))
        elif (
            (a == "") == (b == "")
            and before["name"].lower() > after["name"].lower()
            and (a == "" or column != "last_policy_request")
        ):  # shown to the minute only
            wrong.append((a, before["name"], b, after["name"]))
    return wrong


def test_ux01_state_sort_on_the_whole_list_then_other_sorts(page, sample_server):
    page.goto(f"{sample_server}/devices")
    count = shown_count(page)
    page.wait_for_selector("#devices-grid .ag-row .device-link")
    page.click("#devices-grid .ag-header-cell[col-id=state] .ag-header-cell-label")
    page.wait_for_selector("#devices-grid .ag-header-cell[col-id=state][aria-sort=ascending]")
    rows = loaded_rows(page, 0, 99)
    assert len(rows) == 100 and all(row["name"] for row in rows)
    page.wait_for_function(
        f"() => document.querySelector('{PAGING.format('lbRecordCount')}')"
        f".textContent === '{count:,}'"
    )
    page.click("#devices-grid .ag-header-cell[col-id=site] .ag-header-cell-label")
    page.wait_for_selector("#devices-grid .ag-header-cell[col-id=site][aria-sort=ascending]")
    page.wait_for_timeout(300)
    rows = loaded_rows(page, 0, 99)
    assert len(rows) == 100
    assert page.watch.errors == []


# -- 3: scope and list state travel with every link and with Back -------------------------------


def nav_href(page, label: str) -> str:
    return page.locator("nav .nav-link", has_text=label).get_attribute("href")


def test_ux03_navbar_links_keep_site_and_collection(page, sample_server):
    open_overview(page, sample_server, "?site=PS2&collection=CAS00104")
    scope = "site=PS2&collection=CAS00104"
    page.wait_for_function(
        "() => [...document.querySelectorAll('nav .nav-link')].some(a => "
        "a.getAttribute('href') === '/trends?site=PS2&collection=CAS00104')"
    )
    assert nav_href(page, "Trends") == f"/trends?{scope}"
    assert nav_href(page, "Devices") == f"/devices?{scope}"
    assert nav_href(page, "Overview") == f"/?{scope}"
    assert nav_href(page, "Intune only") == "/intune-only"  # the whole Intune source: no scope

    page.locator("nav .nav-link", has_text="Devices").click()
    page.wait_for_url(f"**/devices?{scope}")
    chips = page.locator("#devices-chips [data-filter]")
    page.wait_for_selector("#devices-chips [data-filter='site=PS2']")
    assert sorted(chips.evaluate_all("cs => cs.map(c => c.dataset.filter)")) == [
        "collection=CAS00104",
        "site=PS2",
    ]
    assert nav_href(page, "Trends") == f"/trends?{scope}"

    page.locator("nav .nav-link", has_text="Trends").click()
    page.wait_for_url(f"**/trends?{scope}")
    wait_for_dash(page)
    assert page.locator("#trd-site").inner_text().strip().startswith("PS2")

    open_overview(page, sample_server)  # a dropdown change moves the links along
    assert nav_href(page, "Devices") == "/devices"
    choose(page, "ovw-site", "PS1")
    page.wait_for_function(
        "() => [...document.querySelectorAll('nav .nav-link')].some(a => "
        "a.getAttribute('href') === '/devices?site=PS1')"
    )
    assert page.watch.errors == []


def test_ux03_sort_and_page_live_in_the_url_and_back_returns_to_them(
    page, sample_server, sample_store
):
    query = "enrollment_status=failure_hybrid"
    page.goto(f"{sample_server}/devices?{query}")
    assert shown_count(page) > 300
    page.wait_for_selector("#devices-grid .ag-row .device-link")
    page.click("#devices-grid .ag-header-cell[col-id=name] .ag-header-cell-label")
    page.wait_for_selector("#devices-grid .ag-header-cell[col-id=name][aria-sort=ascending]")
    page.wait_for_function("() => new URLSearchParams(location.search).get('sort') === 'name'")
    for _ in range(2):
        page.click(".ag-paging-button[data-ref=btNext]")
    page.wait_for_function(
        f"() => document.querySelector('{PAGING.format('lbFirstRowOnPage')}').textContent === '201'"
    )
    page.wait_for_function("() => new URLSearchParams(location.search).get('page') === '3'")
    sort = [{"colId": "name", "sort": "asc"}]
    expected = [
        r["name"]
        for r in devices.get_rows(
            sample_store,
            {"startRow": 200, "endRow": 300, "sortModel": sort},
            [("enrollment_status", "failure_hybrid")],
        )["rowData"]
    ]
    assert [row["name"] for row in loaded_rows(page, 200, 299)] == expected
    list_url = path_and_query(page.url)
    assert parse_qs(urlsplit(list_url).query) == {
        "enrollment_status": ["failure_hybrid"],
        "sort": ["name"],
        "page": ["3"],
    }

    link = page.locator("#devices-grid .ag-row[row-index='200'] .device-link")
    name = link.inner_text()
    link.click()
    page.wait_for_selector("#device-page")
    assert page.inner_text("#device-name") == name
    back_link = page.locator("#device-back")
    assert parse_qs(urlsplit(back_link.get_attribute("href")).query) == parse_qs(
        urlsplit(list_url).query
    )

    page.go_back()  # the browser's Back: the same list, sorted, on page 3
    page.wait_for_selector("#devices-grid .ag-header-cell[col-id=name][aria-sort=ascending]")
    page.wait_for_function(
        f"() => document.querySelector("
        f"'{PAGING.format('lbFirstRowOnPage')}')?.textContent === '201'"
    )
    assert page.inner_text(".ag-paging-number[data-ref=lbCurrent]") == "3"
    assert [row["name"] for row in loaded_rows(page, 200, 299)] == expected

    page.goto(sample_server + list_url.replace("sort=name", "sort=-name"))  # a shared URL
    page.wait_for_selector("#devices-grid .ag-header-cell[col-id=name][aria-sort=descending]")
    page.wait_for_function(
        f"() => document.querySelector("
        f"'{PAGING.format('lbFirstRowOnPage')}')?.textContent === '201'"
    )
    sort = [{"colId": "name", "sort": "desc"}]
    expected = [
        r["name"]
        for r in devices.get_rows(
            sample_store,
            {"startRow": 200, "endRow": 300, "sortModel": sort},
            [("enrollment_status", "failure_hybrid")],
        )["rowData"]
    ]
    assert [row["name"] for row in loaded_rows(page, 200, 299)] == expected

    page.locator("#devices-grid .ag-row[row-index='200'] .device-link").click()
    page.wait_for_selector("#device-page")
    page.click("#device-back")  # the page's own link back to the list
    page.wait_for_selector("#devices-grid .ag-header-cell[col-id=name][aria-sort=descending]")
    page.wait_for_function(
        f"() => document.querySelector("
        f"'{PAGING.format('lbFirstRowOnPage')}')?.textContent === '201'"
    )
    assert "enrollment_status=failure_hybrid" in page.url
    assert page.watch.errors == []


# -- 5: the search trims what was pasted -------------------------------------------------------


def test_ux05_search_trims_pasted_spaces(page, sample_server):
    page.goto(f"{sample_server}/devices")
    page.wait_for_selector("#devices-search")
    page.fill("#devices-search", "  LON-LT-001019  ")
    page.press("#devices-search", "Enter")
    page.wait_for_url("**q=**")
    assert shown_count(page) == 1
    assert (
        page.get_attribute("#devices-chips [data-filter^='q=']", "data-filter") == "q=LON-LT-001019"
    )
    page.wait_for_selector("#devices-grid .ag-row .device-link")
    assert page.inner_text("#devices-grid .ag-row[row-index='0'] .device-link") == "LON-LT-001019"
    response = page.request.get(sample_server + "/export/devices.csv?q=%20%20LON-LT-001019%20")
    rows = list(csv.DictReader(io.StringIO(response.text().lstrip("\ufeff"))))
    assert [row["Name"] for row in rows] == ["LON-LT-001019"]


# -- 6: the state history agrees with itself ---------------------------------------------------


def test_ux06_time_in_state_agrees_with_the_timeline(page, sample_server, sample_store):
    page.goto(sample_server + device_path(sample_store, "NYC-LT-001004"))
    page.wait_for_selector("#device-timeline")
    text = page.inner_text("#device-since")
    # history starts 2026-06-01 and the device was failed then: "at least" since that day
    since = re.search(r"since at least (\d{4}-\d{2}-\d{2})", text).group(1)
    rows = page.locator("#device-timeline tbody tr")
    oldest = rows.nth(rows.count() - 1).locator("td").first.inner_text()
    newest_state = rows.nth(0).locator("td").nth(2).inner_text()
    assert since == oldest, (since, oldest)
    assert page.locator("#device-timeline-carried").count() == 1
    assert newest_state == REASON_LABELS["failed"]
    assert page.watch.errors == []


# -- 7: the advice follows the reason ---------------------------------------------------------


@pytest.mark.parametrize("name", ["LON-LNX-0011", "LON-MAC-0016"])
def test_ux07_unknown_os_gets_advice_about_its_os(page, sample_server, sample_store, name):
    assert device_row(sample_store, name)["reason"] == "os-unknown"
    page.goto(sample_server + device_path(sample_store, name))
    page.wait_for_selector("#device-checklist")
    failed = page.locator("#device-checklist li[data-result=fail]")
    assert failed.count() == 1
    advice = failed.inner_text()
    assert "not servers" not in advice
    assert "OS" in advice and "inventory" in advice.lower()
    assert REASON_LABELS["os-unknown"] in page.inner_text("#device-page")
    assert page.watch.errors == []


# -- 8: an empty list and a list of one read correctly -----------------------------------------


def test_ux08_empty_and_single_results(page, sample_server):
    page.goto(f"{sample_server}/devices?q=NO-SUCH-DEVICE")
    assert shown_count(page) == 0
    assert page.inner_text("#devices-count") == "No device matches"
    page.wait_for_selector("#devices-empty")
    body = page.inner_text("#page")
    assert "of more" not in body and "Page 0" not in body
    next_buttons = page.locator(".ag-paging-button[data-ref=btNext]:not(.ag-disabled)")
    assert next_buttons.count() == 0

    page.goto(f"{sample_server}/devices?q=LON-LT-001019")
    assert shown_count(page) == 1
    assert page.inner_text("#devices-count") == "1 device matches"
    page.goto(f"{sample_server}/devices?q=LON-LT-00101")
    assert page.inner_text("#devices-count") == f"{shown_count(page):,} devices match"
    assert page.watch.errors == []


# -- 9: words, not internal names ------------------------------------------------------------


def test_ux09_no_internal_names_on_the_pages_and_in_the_csv(
    page, sample_server, sample_store, sample_settings
):
    page.goto(f"{sample_server}/trends")
    wait_for_dash(page)
    assert "stuck_days" not in page.inner_text("#page")
    assert f"more than {sample_settings.stuck_days} days" in page.inner_text("#page")

    page.goto(f"{sample_server}/devices?attention=enrollment-failed&q=LON-LT-00101")
    page.wait_for_selector("#devices-grid .ag-row .device-link")
    page.wait_for_selector("#devices-grid .ag-row .badge")
    badges = page.locator("#devices-grid .ag-row .badge").all_inner_texts()
    titles = {rule.title for rule in RULES_BY_ID.values()}
    assert badges and set(badges) <= titles
    assert RULES_BY_ID["enrollment-failed"].title in badges

    response = page.request.get(sample_server + "/export/devices.csv?attention=enrollment-failed")
    rows = list(csv.DictReader(io.StringIO(response.text().lstrip("\ufeff"))))
    assert rows
    for row in rows:
        ids = row["Attention rule ids"].split(", ")
        assert "enrollment-failed" in ids
        assert row["Attention rules"].split(", ") == [RULES_BY_ID[i].title for i in ids]
        assert "enrollment-failed" not in row["Fixes"]
        assert "see the error on its page" not in row["Fixes"]

    page.goto(f"{sample_server}/report?site=PS1")
    page.wait_for_selector("#report")
    text = page.inner_text("#report")
    assert "stuck_days" not in text
    assert "see the error on its page" not in text
    link = page.locator("#rpt-attention a[data-rule=enrollment-failed]")
    assert link.count() == 1
    assert link.get_attribute("href") == "/devices?attention=enrollment-failed&site=PS1"
    assert page.watch.errors == []


# -- 10: files say their scope ----------------------------------------------------------------


def test_ux10_csv_file_is_named_after_its_scope(page, sample_server):
    page.goto(f"{sample_server}/devices?site=PS1&collection=CAS00101")
    page.wait_for_selector("#devices-export")
    with page.expect_download() as info:
        page.click("#devices-export")
    name = info.value.suggested_filename
    assert re.fullmatch(r"devices-PS1-CAS00101-\d{8}-\d{4}\.csv", name), name

    page.goto(f"{sample_server}/devices?enrollment_status=failure_hybrid&site=PS2")
    page.wait_for_selector("#devices-export")
    with page.expect_download() as info:
        page.click("#devices-export")
    assert re.fullmatch(
        r"devices-PS2-failure_hybrid-\d{8}-\d{4}\.csv", info.value.suggested_filename
    ), info.value.suggested_filename

    hostile = quote('x";\r\nX-Evil: 1; filename="evil.exe')
    response = page.request.get(f"{sample_server}/export/devices.csv?q={hostile}")
    assert response.status == 200
    disposition = response.headers["content-disposition"]
    assert "x-evil" not in {key.lower() for key in response.headers}
    assert re.fullmatch(
        r'attachment; filename="devices-[A-Za-z0-9_.-]+-\d{8}-\d{4}\.csv"', disposition
    ), disposition


def test_ux10_report_files_are_named_after_their_scope(tmp_path, sample_config):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dashboard",
            "report",
            "--config",
            str(sample_config),
            "--format",
            "png,html",
            "--site",
            "PS1",
            "--collection",
            "CAS00101",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) == 2
    assert all(
        re.fullmatch(r"co-management-\d{4}-W\d{2}-PS1-CAS00101\.(png|html)", n) for n in names
    ), names


# -- 11: the collection dropdown offers what the site has ---------------------------------------


def dropdown_options(page, dropdown_id: str) -> list[str]:
    page.click(f"#{dropdown_id} .dash-dropdown-trigger")
    page.wait_for_selector(".dash-dropdown-option[role=option]")
    texts = page.locator(".dash-dropdown-option[role=option]").all_inner_texts()
    page.keyboard.press("Escape")
    return texts


def test_ux11_collections_of_the_chosen_site_only(page, sample_server):
    open_overview(page, sample_server, "?site=PS2")
    options = dropdown_options(page, "ovw-collection")
    assert any("CAS00112" in o for o in options)
    assert not any("CAS00110" in o or "CAS00111" in o for o in options)
    choose(page, "ovw-site", "PS1")
    page.wait_for_url("**site=PS1**")
    page.wait_for_timeout(500)
    options = dropdown_options(page, "ovw-collection")
    assert any("CAS00110" in o for o in options)
    assert not any("CAS00112" in o for o in options)

    open_overview(page, sample_server, "?site=PS2&collection=CAS00110")
    page.wait_for_selector("#ovw-filter-alert")
    assert "CAS00110" in page.inner_text("#ovw-filter-alert")
    assert "no devices in site PS2" in page.inner_text("#ovw-filter-alert")
    assert page.watch.errors == []


# -- 12: site codes ignore case; a repeated site is refused everywhere --------------------------


def test_ux12_site_codes_ignore_case_and_a_repeated_site_is_refused(
    page, sample_server, cli_summary, sample_config
):
    ps1 = cli_summary(sample_config, site="PS1")["devices"]
    open_overview(page, sample_server, "?site=ps1")
    page.wait_for_function(
        "n => document.getElementById('ovw-scope').textContent.startsWith(n)",
        arg=f"{ps1:,} devices · site PS1",
    )
    assert page.locator("#ovw-filter-alert").count() == 0

    page.goto(f"{sample_server}/devices?site=ps1")
    assert shown_count(page) == ps1
    page.wait_for_selector("#devices-chips [data-filter='site=PS1']")
    response = page.request.get(sample_server + "/export/devices.csv?site=Ps1")
    assert response.status == 200 and int(response.headers["x-device-count"]) == ps1

    page.goto(f"{sample_server}/devices?site=PS1&site=ps1")  # the same site twice is one
    assert shown_count(page) == ps1

    page.goto(f"{sample_server}/devices?site=PS1&site=PS2")
    page.wait_for_selector("#devices-rejected")
    assert "site given more than once" in page.inner_text("#devices-rejected")
    response = page.request.get(sample_server + "/export/devices.csv?site=PS1&site=PS2")
    assert response.status == 400 and "site given more than once" in response.text()
    open_overview(page, sample_server, "?site=PS1&site=PS2")
    page.wait_for_selector("#ovw-filter-alert")
    assert "site given more than once" in page.inner_text("#ovw-filter-alert")
    page.goto(f"{sample_server}/report?site=PS1&site=PS2")
    page.wait_for_selector("#rpt-error")
    assert "site given more than once" in page.inner_text("#rpt-error")
    assert page.watch.errors == []


def test_ux03_a_page_past_the_end_and_a_bad_sort_fall_back(page, sample_server):
    page.goto(f"{sample_server}/devices?q=-00101&page=7&sort=-name")
    page.wait_for_selector("#devices-grid .ag-header-cell[col-id=name][aria-sort=descending]")
    page.wait_for_selector("#devices-grid .ag-row .device-link")
    # one page of rows: the URL says page 1 (left out), the sort is kept
    page.wait_for_function("() => !new URLSearchParams(location.search).has('page')")
    assert parse_qs(urlsplit(page.url).query) == {"q": ["-00101"], "sort": ["-name"]}
    page.goto(f"{sample_server}/devices?q=-00101&sort=bogus&page=x")
    page.wait_for_selector("#devices-grid .ag-header-cell[col-id=severity][aria-sort=descending]")
    assert page.locator("#devices-rejected").count() == 0
    assert page.watch.errors == []

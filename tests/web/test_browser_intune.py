"""The Intune side in a real headless Chromium, against a live server on the bundled sample
(which has an Intune export) and on the factory estate (which has none).

- Every Intune number the overview draws equals ``summary --format json``'s ``intune``.
- Each tile count and each donut segment opens the list behind it, with that many rows.
- The donut's "View as table" is the keyboard route to the same lists.
- ``/intune-only`` pages on the server, sorts, exports CSV, and is axe-core clean.
- The device page shows the matching Intune record.
- A configuration without ``[intune]`` shows none of it.
"""

from __future__ import annotations

import csv
import io
import math
from urllib.parse import urlsplit

import pytest

from dashboard.intune_labels import COMPLIANCE_LABELS
from dashboard.report.capture import wait_for_dash
from dashboard.web.pages.overview import GRAPHS
from tests.web.test_browser_a11y import serious_violations, tab_to

pytestmark = pytest.mark.browser

OVERVIEW_GRAPHS = len(GRAPHS) + 1  # the compliance donut
# A shared CI machine under load takes tens of seconds for a first overview: patience here
# keeps the assertions about numbers, not about the machine's speed.
PATIENCE_MS = 120_000


@pytest.fixture(autouse=True)
def _patient(page):
    page.set_default_timeout(PATIENCE_MS)


def settle(page, graphs: int = 0) -> None:
    wait_for_dash(page, graphs=graphs, timeout=PATIENCE_MS)


def open_overview(page, base: str, query: str = "") -> None:
    page.goto(base + "/" + query)
    settle(page, graphs=OVERVIEW_GRAPHS)
    page.wait_for_selector("#intune-count-agree[data-count]:not([data-count=''])")
    settle(page)


def count_of(page, selector: str) -> int:
    return int(page.get_attribute(selector, "data-count"))


def donut_table(page) -> dict[str, tuple[int, str]]:
    """The donut's table view: label -> (count, link)."""
    rows = page.evaluate(
        """() => [...document.querySelectorAll('#ovw-intune-compliance-table tbody tr')]
          .map(tr => [tr.querySelector('th').textContent,
                      tr.querySelector('td').textContent,
                      (tr.querySelector('td a') || {}).getAttribute
                        ? tr.querySelector('td a').getAttribute('href') : ''])"""
    )
    return {label: (int(count.replace(",", "")), href) for label, count, href in rows}


@pytest.mark.parametrize("site", [None, "PS1"])
def test_every_intune_number_equals_the_summary(page, sample_server, sample_config, site):
    expected = _cli(sample_config, site)["intune"]
    open_overview(page, sample_server, f"?site={site}" if site else "")
    for state, count in expected["reconciliation"].items():
        assert count_of(page, f"#intune-count-{state}") == count, state
    assert count_of(page, "#intune-count-intune-only") == expected["intune_only"]
    for key in ("records", "windows", "dropped", "matched", "matched_by_name"):
        assert count_of(page, f"#intune-{key}") == expected[key], key
    assert count_of(page, "#intune-authority_mismatch") == expected["authority_mismatch"]
    drawn = {label: count for label, (count, _href) in donut_table(page).items()}
    assert drawn == {
        COMPLIANCE_LABELS[key]: count for key, count in expected["compliance"].items() if count
    }
    # the donut's own centre: the co-managed devices it covers
    centre = page.text_content("#ovw-intune-compliance .annotation-text")
    assert centre.replace(",", "").startswith(str(sum(expected["compliance"].values())))
    assert "inferred" in page.text_content("#intune-help")


def _cli(config, site):
    from tests.web.conftest import run_cli_summary

    return run_cli_summary(config, site=site)


def test_each_tile_count_opens_its_list(page, sample_server, sample_config):
    expected = _cli(sample_config, None)["intune"]
    # one overview (a slow page on a loaded machine): the links, then each list they open
    open_overview(page, sample_server)
    hrefs = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('a.intune-link')]
          .map(a => [a.querySelector('[id^=intune-count-]').id, a.getAttribute('href')]))"""
    )
    assert hrefs["intune-count-intune-only"] == "/intune-only"
    # a click on a tile navigates in the page
    page.click("a.intune-link:has(#intune-count-intune-only)")
    page.wait_for_url(lambda url: urlsplit(url).path == "/intune-only")
    settle(page)
    assert count_of(page, "#intune-only-count") == expected["intune_only"]
    for state, count in expected["reconciliation"].items():
        href = hrefs[f"intune-count-{state}"]
        assert href == f"/devices?intune={state}"
        page.goto(sample_server + href)
        settle(page)
        assert count_of(page, "#devices-count") == count, state
        assert page.locator(f"#devices-chips [data-filter='intune={state}']").count() == 1
        # the export honours the filter: its count header and its rows
        export = page.get_attribute("#devices-export", "href")
        assert export == f"/export/devices.csv?intune={state}"
        response = page.request.get(sample_server + export)
        assert response.headers["x-device-count"] == str(count)
        assert len(list(csv.reader(io.StringIO(response.text())))) == count + 1


def test_each_donut_segment_opens_its_list(page, sample_server, sample_config):
    expected = _cli(sample_config, None)["intune"]["compliance"]
    open_overview(page, sample_server)
    table = donut_table(page)
    assert len(table) == sum(1 for count in expected.values() if count)
    # a click on the drawn slice opens its list: the middle of the first slice (drawn
    # clockwise from 12 o'clock), between the hole (55 % of the radius) and the rim
    first_key = next(key for key, count in expected.items() if count)
    share = expected[first_key] / sum(expected.values())
    pie = page.locator("#ovw-intune-compliance .pielayer .trace")
    pie.scroll_into_view_if_needed()
    box = pie.bounding_box()
    radius = min(box["width"], box["height"]) / 2
    angle = math.pi * share
    x = box["x"] + box["width"] / 2 + 0.78 * radius * math.sin(angle)
    y = box["y"] + box["height"] / 2 - 0.78 * radius * math.cos(angle)
    page.mouse.move(x, y)
    page.wait_for_selector("#ovw-intune-compliance .hoverlayer .hovertext")
    page.mouse.click(x, y)
    page.wait_for_url(lambda url: urlsplit(url).path == "/devices")
    settle(page)
    assert urlsplit(page.url).query == f"compliance={first_key}"
    assert count_of(page, "#devices-count") == expected[first_key]
    # every segment's table link opens a list of that many devices
    for key, count in expected.items():
        if not count:
            continue
        drawn, href = table[COMPLIANCE_LABELS[key]]
        assert (drawn, href) == (count, f"/devices?compliance={key}")
        page.goto(sample_server + href)
        settle(page)
        assert count_of(page, "#devices-count") == count, key


def test_keyboard_route_from_the_donut(page, sample_server):
    open_overview(page, sample_server)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, "e.tagName === 'SUMMARY' && e.closest('#ovw-intune-compliance-alt')")
    page.keyboard.press("Enter")
    tab_to(page, "e.tagName === 'A' && e.closest('#ovw-intune-compliance-table')")
    expected = page.evaluate("() => document.activeElement.getAttribute('href')")
    count = int(page.evaluate("() => document.activeElement.textContent").replace(",", ""))
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/devices")
    assert urlsplit(page.url).path + "?" + urlsplit(page.url).query == expected
    settle(page)
    assert count_of(page, "#devices-count") == count


def _grid_names(page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll(
              '#intune-only-grid .ag-center-cols-container .ag-row, '
              + '#intune-only-grid .ag-pinned-left-cols-container .ag-row')]
          .filter(r => r.closest('.ag-pinned-left-cols-container'))
          .sort((a, b) => +a.getAttribute('row-index') - +b.getAttribute('row-index'))
          .map(r => r.querySelector('[col-id=name]').textContent)"""
    )


def test_intune_only_pages_sorts_and_exports(page, sample_server, sample_config):
    expected = _cli(sample_config, None)["intune"]["intune_only"]
    assert expected > 0, "the sample must have Intune-only records"
    page.goto(sample_server + "/intune-only")
    settle(page)
    page.wait_for_selector("#intune-only-grid .ag-row [col-id=name]")
    assert count_of(page, "#intune-only-count") == expected
    names = _grid_names(page)
    assert names == sorted(names, key=str.casefold)
    assert names and len(names) <= min(expected, 100)  # the rows in view (virtualised)
    # the pager shows the count the rows' answer carried (AG Grid may draw it a frame after
    # the rows)
    page.wait_for_function(
        """n => (document.querySelector('#intune-only-grid .ag-paging-row-summary-panel')
                  || {}).textContent?.includes('of ' + n)""",
        arg=f"{expected:,}",
    )
    # sort by name descending: the server answers a new block
    header = page.locator("#intune-only-grid .ag-header-cell[col-id=name] .ag-header-cell-label")
    header.click()  # ascending -> descending
    page.wait_for_function(
        "() => document.querySelector('#intune-only-grid .ag-header-cell[col-id=name]')"
        ".getAttribute('aria-sort') === 'descending'"
    )
    page.wait_for_function(
        f"""() => {{
          const rows = [...document.querySelectorAll('#intune-only-grid '
            + '.ag-pinned-left-cols-container .ag-row[row-index="0"] [col-id=name]')];
          return rows.length && rows[0].textContent === {names[0]!r} ? false : rows.length > 0;
        }}"""
    )
    descending = _grid_names(page)
    assert descending == sorted(descending, key=str.casefold, reverse=True)
    # the export: every record, neutralised, behind the same gate
    response = page.request.get(sample_server + page.get_attribute("#intune-only-export", "href"))
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text().lstrip("\ufeff"))))
    assert rows[0][0] == "Device name"
    assert len(rows) - 1 == expected == int(response.headers["x-device-count"])
    assert not any(cell[:1] in "=+-@" and cell for row in rows[1:] for cell in row)


def test_intune_only_is_axe_clean(page, sample_server):
    page.goto(sample_server + "/intune-only")
    settle(page)
    page.wait_for_selector("#intune-only-grid .ag-row")
    assert serious_violations(page) == []


def test_device_page_shows_its_intune_record(page, sample_server, sample_store):
    devices = sample_store.estate.devices
    matched = devices[devices["intune_row"] >= 0]
    by_name = matched[matched["intune_match"] == "name"]
    row = (by_name if len(by_name) else matched).iloc[0]
    record = sample_store.estate.intune.frame.iloc[int(row["intune_row"])]
    page.goto(f"{sample_server}/device/{int(row['ResourceID'])}?site={row['site']}")
    settle(page)
    card = page.text_content("#device-intune")
    assert str(record["id"]) in card
    assert str(record["deviceName"]) in card
    assert ("by name" if len(by_name) else "by Entra device ID") in card
    # a device an Intune rule flags shows the rule with its fix
    flagged = devices[devices["intune_state"] == "missing"].iloc[0]
    page.goto(f"{sample_server}/device/{int(flagged['ResourceID'])}?site={flagged['site']}")
    settle(page)
    item = page.locator("#device-attention [data-rule=intune-missing]")
    assert item.count() == 1 and "Fix:" in item.text_content()


def test_without_intune_nothing_of_it_shows(page, factory_server):
    page.goto(factory_server + "/")
    settle(page, graphs=len(GRAPHS))
    assert page.locator("#ovw-intune").count() == 0
    assert page.locator("#intune-stale-banner").count() == 0
    assert "Intune only" not in page.text_content("#page")
    page.goto(factory_server + "/devices?intune=missing")
    settle(page)
    assert "no Intune source is configured" in page.text_content("#devices-rejected")
    page.goto(factory_server + "/trends")
    settle(page)
    assert page.locator("#trd-intune-row").count() == 0
    page.goto(factory_server + "/intune-only")
    settle(page)
    assert page.locator("#intune-only-none").count() == 1
    assert page.request.get(factory_server + "/export/intune-only.csv").status == 404

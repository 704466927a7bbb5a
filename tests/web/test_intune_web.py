"""The Intune side on the pages, without a browser: device-list filters, the overview's tile
and donut, the Intune-only list's sort, page rows and export, the trends charts."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.model.device_query import (
    MAX_FILTER_VALUES,
    FilterTooLarge,
    filter_mask,
    parse_filter,
)
from dashboard.model.intune import reconcile
from dashboard.model.intune_list import display_frame, export_chunks, sort_order
from dashboard.web import app as web_app
from dashboard.web import chart_tables, intune_tiles, intune_trends
from dashboard.web.links import devices_url, devices_url_from_fragment, parse_query
from dashboard.web.pages import intune_only, trends
from tests.factories import AS_OF, classified
from tests.model.test_intune import GUID, OTHER, intune

SUMMARY = {
    "records": 12,
    "windows": 10,
    "dropped": 1,
    "matched": 7,
    "matched_by_name": 2,
    "reconciliation": {
        "agree": 3,
        "missing": 2,
        "stale": 1,
        "not-comanaged-in-intune": 0,
        "intune-ahead": 4,
    },
    "intune_only": 5,
    "compliance": {
        "compliant": 3,
        "noncompliant": 1,
        "inGracePeriod": 0,
        "conflict": 0,
        "error": 0,
        "unknown": 0,
        "configManager": 2,
        "no_record": 2,
    },
    "authority_mismatch": 1,
}


def parse(query: dict, intune: bool = True):
    return parse_filter(query, ["PS1"], [], [], intune=intune)


# -- device-list filters -----------------------------------------------------------------------


def test_intune_filters_accepted_with_a_source():
    flt = parse({"intune": ["missing", "stale"], "compliance": ["no_record"]})
    assert flt.values == {"intune": ("missing", "stale"), "compliance": ("no_record",)}
    assert flt.rejected == []


def test_intune_filters_refused_without_a_source_saying_why():
    flt = parse(
        {
            "intune": ["missing"],
            "compliance": ["compliant"],
            "attention": ["intune-stale", "enrollment-failed"],
        },
        intune=False,
    )
    assert flt.values == {"attention": ("enrollment-failed",)}
    assert flt.rejected == [
        "intune=missing: no Intune source is configured",
        "compliance=compliant: no Intune source is configured",
        "attention=intune-stale: no Intune source is configured",
    ]


def test_intune_filter_values_are_checked():
    flt = parse({"intune": ["<script>"], "compliance": ["Compliant"]})
    assert flt.values == {}
    assert flt.rejected == [
        "intune=<script>: not a known value",
        "compliance=Compliant: not a known value",
    ]


def test_intune_filters_are_capped_like_the_others():
    with pytest.raises(FilterTooLarge):
        parse({"compliance": ["compliant"] * (MAX_FILTER_VALUES + 1)})


def _reconciled():
    devices = classified(
        [
            {"Name": "PC-1", "AADDeviceID": GUID},  # co-managed, current record: agree
            {"Name": "PC-2", "AADDeviceID": OTHER},  # co-managed, no record: missing
            {
                "Name": "PC-3",
                "AADDeviceID": "",
                "MDMEnrolled": "0",
                "ComgmtPolicyPresent": "0",
                "MDMWorkloads": "",
            },
        ]
    )
    records = intune([{"azureADDeviceId": GUID, "complianceState": "noncompliant"}])
    return devices.join(reconcile(devices, records, AS_OF, 7))


def test_filter_mask_selects_by_reconciliation_and_compliance():
    devices = _reconciled()
    assert list(devices["intune_state"].astype("object")) == ["agree", "missing", np.nan]

    def names(query):
        mask = filter_mask(None, devices, parse(query))
        return list(devices["Name"][mask])

    assert names({"intune": ["agree"]}) == ["PC-1"]
    assert names({"intune": ["agree", "missing"]}) == ["PC-1", "PC-2"]
    assert names({"compliance": ["noncompliant"]}) == ["PC-1"]
    assert names({"compliance": ["no_record"]}) == ["PC-2"]
    assert names({"intune": ["missing"], "compliance": ["noncompliant"]}) == []


def test_filter_mask_without_the_columns_matches_nothing():
    devices = classified([{"Name": "PC-1"}])
    assert not filter_mask(None, devices, parse({"intune": ["agree"]})).any()


def test_links_round_trip_the_intune_filters():
    url = devices_url({"intune": "not-comanaged-in-intune"}, "PS1")
    assert url == "/devices?intune=not-comanaged-in-intune&site=PS1"
    assert parse_query(url.split("?")[1])["intune"] == ["not-comanaged-in-intune"]
    assert devices_url_from_fragment("compliance=inGracePeriod") == (
        "/devices?compliance=inGracePeriod"
    )
    # from the browser: an unknown value does not survive
    assert devices_url_from_fragment("compliance=javascript:alert(1)") is None
    with pytest.raises(ValueError):
        devices_url({"intune": "everything"})


# -- overview ----------------------------------------------------------------------------------


def _texts(component) -> list:
    """Every (id, children) pair of a component tree."""
    found = []

    def walk(node):
        if isinstance(node, list | tuple):
            for item in node:
                walk(item)
            return
        if not hasattr(node, "to_plotly_json"):
            return
        if getattr(node, "id", None):
            found.append((node.id, getattr(node, "children", None), node))
        walk(getattr(node, "children", None))

    walk(component)
    return found


def test_tile_shows_the_six_counts_each_a_link_to_its_records():
    tiles = intune_tiles.tile(SUMMARY, "PS1", None)
    shown = {i: (text, node) for i, text, node in _texts(tiles)}
    for state, count in SUMMARY["reconciliation"].items():
        text, node = shown[f"intune-count-{state}"]
        assert text == f"{count:,}"
        assert node.to_plotly_json()["props"]["data-count"] == str(count)
    assert shown["intune-count-intune-only"][0] == "5"
    links = [tile.children.href for tile in tiles]
    assert links[:5] == [f"/devices?intune={state}&site=PS1" for state in SUMMARY["reconciliation"]]
    assert links[5] == "/intune-only"  # the whole source: no scope


def test_source_line_numbers_and_authority_link():
    line = intune_tiles.source_line(SUMMARY, None, "CAS00101")
    shown = {i: text for i, text, _node in _texts(line)}
    for key in ("records", "windows", "dropped", "matched", "matched_by_name"):
        assert shown[f"intune-{key}"] == f"{SUMMARY[key]:,}"
    link = next(node for i, _t, node in _texts(line) if i == "intune-authority-link")
    assert link.href == "/devices?attention=authority-mismatch&collection=CAS00101"


def test_donut_segments_are_the_nonzero_compliance_counts_with_their_links():
    fig = intune_tiles.compliance_figure(SUMMARY)
    points = chart_tables.points(fig)
    assert [(p.category, p.value) for p in points] == [
        ("Compliant", 3),
        ("Not compliant", 1),
        ("See ConfigMgr", 2),
        ("No Intune record", 2),
    ]
    assert [devices_url_from_fragment(p.fragment, "PS1") for p in points] == [
        "/devices?compliance=compliant&site=PS1",
        "/devices?compliance=noncompliant&site=PS1",
        "/devices?compliance=configManager&site=PS1",
        "/devices?compliance=no_record&site=PS1",
    ]
    go.Figure(fig.to_dict())  # validates: the builders skip plotly's validation for speed


def _hrefs(node) -> list[str]:
    if isinstance(node, list | tuple):
        return [href for item in node for href in _hrefs(item)]
    if not hasattr(node, "to_plotly_json"):
        return []
    own = [node.href] if getattr(node, "href", None) else []
    return own + _hrefs(getattr(node, "children", None))


def test_donut_table_view_links_each_count():
    fig = intune_tiles.compliance_figure(SUMMARY)
    table = chart_tables.chart_table(fig, "t", "t-table", "PS1", None, category_header="Compliance")
    assert _hrefs(table) == [
        "/devices?compliance=compliant&site=PS1",
        "/devices?compliance=noncompliant&site=PS1",
        "/devices?compliance=configManager&site=PS1",
        "/devices?compliance=no_record&site=PS1",
    ]


def test_donut_without_co_managed_devices_says_so():
    empty = {**SUMMARY, "compliance": dict.fromkeys(SUMMARY["compliance"], 0)}
    fig = intune_tiles.compliance_figure(empty)
    assert chart_tables.empty_message(fig) == "No co-managed device in this view"


def test_navigate_from_a_donut_click_keeps_only_known_filters(sample_store, sample_settings):
    click = {"points": [{"customdata": "compliance=noncompliant&site=EVIL"}]}
    url = intune_tiles.navigate(click, "PS1", None, sample_store, sample_settings)
    assert url.startswith("/devices?compliance=noncompliant")
    assert "EVIL" not in url


def test_stale_banner():
    class Estate:
        intune = None
        intune_error = "Intune: file intune.csv not found"

    banner = intune_tiles.stale_banner(Estate())
    assert banner.children.startswith("Intune data stale: Intune: file intune.csv not found")
    Estate.intune_error = None
    assert intune_tiles.stale_banner(Estate()) is None


# -- the Intune-only list ----------------------------------------------------------------------


def _records():
    return intune(
        [
            {"deviceName": "beta", "lastSyncDateTime": AS_OF - pd.Timedelta(days=3)},
            {"deviceName": "Alpha", "lastSyncDateTime": pd.NaT},
            {"deviceName": "=cmd|' /C calc'!A0", "userPrincipalName": "+evil@contoso.com"},
            {"deviceName": "gamma", "complianceState": "configManager"},
        ]
    )


def test_sort_order_by_name_case_insensitive_and_by_date_missing_last():
    frame = _records()
    rows = np.array([0, 1, 3])
    assert list(sort_order(frame, rows, "name", False)) == [1, 0, 3]
    assert list(sort_order(frame, rows, "name", True)) == [3, 0, 1]
    assert list(sort_order(frame, rows, "last_sync", False)) == [0, 3, 1]
    assert list(sort_order(frame, rows, "last_sync", True)) == [3, 0, 1]  # never synced last
    assert list(sort_order(frame, rows, "no-such-column", False)) == [1, 0, 3]


def test_display_shows_words_and_never_for_no_sync():
    shown = display_frame(_records(), np.array([1, 3]))
    assert list(shown["last_sync"]) == [
        "never",
        (AS_OF - pd.Timedelta(days=1)).strftime("%Y-%m-%d %H:%M"),
    ]
    assert list(shown["compliance"]) == ["Compliant", "See ConfigMgr"]
    assert shown["agent"].iloc[0] == "ConfigMgr client and MDM (co-managed)"


def test_export_neutralises_formulas():
    tables = list(export_chunks(_records(), np.array([2]), chunk=1))
    text = tables[0].to_pandas()
    assert text["Device name"].iloc[0] == "'=cmd|' /C calc'!A0"
    assert text["Primary user"].iloc[0] == "'+evil@contoso.com"


# -- trends --------------------------------------------------------------------------------------


def test_trend_charts_read_the_history_metrics():
    frame = pd.DataFrame(
        {
            "intune.reconciliation.agree": [5, 7],
            "intune.reconciliation.missing": [2, np.nan],
            "intune.compliance.configManager": [4, 1],
        },
        index=[pd.Timestamp("2026-11-16").date(), pd.Timestamp("2026-11-23").date()],
    )
    reconciliation = intune_trends.reconciliation_figure(frame)
    by_name = {trace.name: list(trace.y) for trace in reconciliation.data}
    assert by_name["Agree"] == [5, 7]
    assert by_name["Missing in Intune"] == [2, 0]  # a day without the metric counts zero
    assert by_name["Intune ahead"] == [0, 0]
    compliance = intune_trends.compliance_figure(frame)
    assert {trace.name: list(trace.y) for trace in compliance.data}["See ConfigMgr"] == [4, 1]


def test_csv_reader_of_export_header():
    from dashboard.model.intune_list import EXPORT_COLUMNS
    from dashboard.web.export import stream_tables

    text = "".join(stream_tables(EXPORT_COLUMNS.values(), export_chunks(_records(), np.arange(4))))
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == list(EXPORT_COLUMNS.values())
    assert len(rows) == 5


# -- the Intune-only grid's server side, on the bundled sample -----------------------------------


def test_intune_only_blocks_page_through_the_sorted_rows(sample_store):
    from dashboard.web.pages import intune_only

    expected = len(sample_store.estate.intune_only)
    assert expected > 10

    def block(start, end, sort):
        return intune_only.get_rows(
            sample_store, {"startRow": start, "endRow": end, "sortModel": sort}
        )

    by_sync = [{"colId": "last_sync", "sort": "desc"}]
    whole = block(0, expected, by_sync)
    assert whole["rowCount"] == expected == len(whole["rowData"])
    pages = block(0, 10, by_sync)["rowData"] + block(10, expected, by_sync)["rowData"]
    assert [r["key"] for r in pages] == [r["key"] for r in whole["rowData"]]
    synced = [r["last_sync"] for r in whole["rowData"] if r["last_sync"] != "never"]
    assert synced == sorted(synced, reverse=True)
    # a request the grid never sends: an unknown column sorts by name, a huge block is cut
    names = [r["name"] for r in block(0, 10**9, [{"colId": "x<y", "sort": "asc"}])["rowData"]]
    assert names == sorted(names, key=str.casefold)


def test_intune_only_export_and_gate(sample_settings, sample_store):
    from dashboard.web.app import create_app

    client = create_app(sample_settings, sample_store).server.test_client()
    response = client.get("/export/intune-only.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) - 1 == len(sample_store.estate.intune_only)
    assert response.headers["X-Device-Count"] == str(len(rows) - 1)
    assert "attachment" in response.headers["Content-Disposition"]


def test_trend_charts_on_the_sample_history(sample_store, sample_settings):
    figs = intune_trends.render(
        trends.trend_frame, sample_store, sample_settings, None, None, None, None
    )
    reconciliation, compliance = figs[0], figs[1]
    agree = next(trace for trace in reconciliation.data if trace.name == "Agree")
    assert len(agree.x) > 1 and max(agree.y) > 0
    latest = sample_store.summary()["intune"]["compliance"]["compliant"]
    compliant = next(trace for trace in compliance.data if trace.name == "Compliant")
    assert compliant.y[-1] == latest  # the newest snapshot is the loaded data's day


def test_without_intune_the_pages_add_nothing(factory_store, factory_settings):
    from dashboard.web.pages import intune_only, overview

    assert intune_tiles.section(factory_store, factory_settings) is None
    assert "ovw-intune" not in str(overview.layout(factory_store, factory_settings, "/", {}))
    assert "trd-intune" not in str(trends.layout(factory_store, factory_settings, "/trends", {}))
    assert "intune-only-none" in str(
        intune_only.layout(factory_store, factory_settings, "/intune-only", {})
    )
    assert "intune" not in factory_store.summary()


def test_the_intune_only_list_is_in_the_navbar_with_an_intune_source(
    sample_store, sample_settings, factory_store, factory_settings
):
    assert sample_settings.intune is not None and factory_settings.intune is None
    with_source = web_app.nav_links(sample_store, sample_settings, "/intune-only", "?site=PS1")
    assert [page.NAV_LABEL for page in web_app.nav_pages(sample_settings)][-1] == "Intune only"
    # the list is the whole Intune source: its link carries no site or collection
    assert with_source[-1] == (intune_only.PATH, True)
    assert all(href.endswith("site=PS1") for href, _active in with_source[:-1])
    assert intune_only not in web_app.nav_pages(factory_settings)
    links = web_app.nav_links(factory_store, factory_settings, "/", "")
    assert len(links) == len(web_app.nav_pages(factory_settings)) == 3

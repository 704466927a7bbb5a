"""History on the pages, as plain functions: the trends page's callbacks, the overview's
week-over-week tiles and "What changed" panel, the device list's ``changed`` filter and the
device page's state history. The bundled sample ships 26 weekly snapshots."""

from __future__ import annotations

from datetime import date

import pytest
from dash import no_update

from dashboard.data.history import HistoryStore
from dashboard.model import kpis
from dashboard.model.trends import CHANGE_KINDS, summary_from_metrics
from dashboard.service.store import EstateStore
from dashboard.web import trend_figures, week_changes
from dashboard.web.links import changes_url, trends_search
from dashboard.web.pages import devices, overview, trends
from dashboard.web.pages.device import layout as device_layout

AS_OF_DAY = date(2026, 11, 23)
WEEK_AGO = date(2026, 11, 16)


@pytest.fixture(scope="module")
def history(sample_store):
    assert sample_store.history is not None, "the bundled sample ships history.sqlite"
    return sample_store.history


def find(component, component_id):
    """The component with this id in a layout tree, or None."""
    if getattr(component, "id", None) == component_id:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = find(child, component_id)
            if found is not None:
                return found
    return None


def text_of(component) -> str:
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    children = getattr(component, "children", None)
    if isinstance(children, list | tuple):
        return "".join(text_of(c) for c in children)
    return text_of(children)


# -- trends page -----------------------------------------------------------------------------


def test_trends_render_draws_every_chart(sample_store, sample_settings, history):
    out = trends.render(sample_store, sample_settings, None, None, None, None)
    assert set(out) == set(trends.RENDER_OUTPUTS)
    days = history.days()
    for graph_id in trend_figures.FIGURES:
        figure = out[graph_id]
        assert not (figure.layout.meta or {}).get("empty"), graph_id
        assert all(len(trace.x) == len(days) for trace in figure.data), graph_id
    assert out["trd-scope"].startswith(f"{len(days)} snapshots from {days[0]} to {days[-1]}")
    share = out["trd-share"].data[0]
    frame = history.trend()
    assert share.y[-1] == pytest.approx(
        100 * frame["comanaged"].iloc[-1] / frame["devices"].iloc[-1]
    )
    assert share.x[-1] == AS_OF_DAY.isoformat()
    assert share.y[0] < share.y[-1]  # co-management grew
    funnel = {trace.name: list(trace.y) for trace in out["trd-funnel"].data}
    assert funnel["Enrolled"][-1] == sample_store.summary()["funnel"]["enrolled"]
    names = [trace.name for trace in out["trd-workloads"].data]
    assert names == [
        "Compliance policies",
        "Office Click-to-Run apps",
        "Client apps",
        "Windows Update policies",
    ]  # the workloads that moved, largest first
    assert out["trd-workloads"].layout.meta["never_moved"] == [
        "Resource access policies",
        "Device configuration",
        "Endpoint Protection",
    ]
    failures = {trace.name: list(trace.y) for trace in out["trd-failures"].data}
    summary = sample_store.summary()
    assert failures["Enrollment failures"][-1] == (
        summary["enrollment_status"]["failure_hybrid"] + summary["enrollment_status"]["failure_aad"]
    )
    assert failures["Enrollment stuck"][-1] == summary["attention"]["stuck"] > 0
    bad_week = failures["Enrollment failures"][-10]  # nine weeks back: the sample's bad week
    assert bad_week == max(failures["Enrollment failures"])
    assert bad_week > 1.5 * failures["Enrollment failures"][-11]
    attention = {trace.name: list(trace.y) for trace in out["trd-attention"].data}
    assert attention["Need attention (any rule)"][-1] == summary["attention_devices"]
    assert attention["Enrollment stuck (medium)"][-1] == summary["attention"]["stuck"]
    assert len(attention) == 1 + len(summary["attention"])


def test_trends_filters_and_date_range(sample_store, sample_settings, history):
    out = trends.render(
        sample_store, sample_settings, "PS1", "CAS00102", "2026-09-01", "2026-10-01"
    )
    share = out["trd-share"].data[0]
    assert list(share.x) == ["2026-09-07", "2026-09-14", "2026-09-21", "2026-09-28"]
    frame = history.trend("PS1", "CAS00102")
    day = date(2026, 9, 28)
    assert share.y[-1] == pytest.approx(
        100 * frame.loc[day, "comanaged"] / frame.loc[day, "devices"]
    )
    assert "site PS1" in out["trd-scope"] and "CAS00102" in out["trd-scope"]
    empty = trends.render(sample_store, sample_settings, None, None, "2020-01-01", "2020-02-01")
    assert empty["trd-share"].layout.meta["empty"] == trend_figures.NO_DAYS


def test_trends_without_history(factory_store, factory_settings, tmp_path):
    assert factory_store.history is None
    out = trends.render(factory_store, factory_settings, None, None, None, None)
    assert out["trd-share"].layout.meta["empty"] == trend_figures.HISTORY_OFF
    store = EstateStore(
        factory_settings,
        history=HistoryStore(f"sqlite:///{tmp_path / 'empty.sqlite'}", read_only=False),
        loader=lambda _settings: factory_store.estate,
    )
    store.history.ensure_schema()
    store._swap(factory_store.estate)  # serve it without recording a snapshot
    out = trends.render(store, factory_settings, None, None, None, None)
    assert out["trd-funnel"].layout.meta["empty"] == trend_figures.NO_HISTORY


def test_trends_validates_the_url(sample_store, sample_settings):
    site, collection, start, end, notes = trends.checked(
        sample_store, sample_settings, "XX", "CAS00102", "2026-13-01", "2026-11-01"
    )
    assert (site, collection, start, end) == (None, "CAS00102", None, date(2026, 11, 1))
    assert any("Unknown site" in n for n in notes)
    assert any("Unknown from date" in n for n in notes)
    *_, notes = trends.checked(
        sample_store, sample_settings, None, None, "2026-11-01", "2026-10-01"
    )
    assert any("after" in n for n in notes)
    assert trends.parse_day("2026-11-16T00:00:00") == WEEK_AGO  # a picker's value
    assert trends.parse_day("<script>") is None


def test_trends_sync_both_ways(sample_store, sample_settings):
    # The URL sets the controls (first load, back button).
    out = trends.sync_filters(
        sample_store,
        sample_settings,
        None,
        "?site=PS1&collection=CAS00102&from=2026-09-01&to=bad",
        None,
        None,
        None,
        None,
        "/trends",
    )
    assert out[:5] == (no_update, "PS1", "CAS00102", "2026-09-01", no_update)
    assert "Unknown to date" in text_of(out[5])
    # A control change writes the URL.
    out = trends.sync_filters(
        sample_store,
        sample_settings,
        "trd-range",
        "",
        "PS2",
        None,
        "2026-09-01T00:00:00",
        "2026-10-01",
    )
    assert (
        out[0]
        == trends_search("PS2", None, "2026-09-01", "2026-10-01")
        == "?site=PS2&from=2026-09-01&to=2026-10-01"
    )
    assert (
        trends.sync_filters(
            sample_store, sample_settings, None, "", None, None, None, None, "/devices"
        )
        == (no_update,) * 6
    )


def test_trends_layout_bounds_the_date_picker(sample_store, sample_settings, history):
    page = trends.layout(
        sample_store, sample_settings, "/trends", {"from": ["2026-10-01"], "site": ["PS1"]}
    )
    picker = find(page, "trd-range")
    days = history.days()
    assert (picker.min_date_allowed, picker.max_date_allowed) == (str(days[0]), str(days[-1]))
    assert picker.start_date == "2026-10-01" and picker.end_date is None
    assert find(page, "trd-site").value == "PS1"


def test_trends_is_in_the_navbar():
    from dashboard.web.app import PAGES, find_page

    assert trends in PAGES and trends.NAV_LABEL == "Trends"
    assert find_page("/trends") is trends and find_page("/trends/") is trends


# -- overview: week over week and what changed ----------------------------------------------------


def test_week_over_week_tiles_match_history(sample_store, history):
    for site, collection in ((None, None), ("PS2", None), ("PS1", "CAS00102")):
        summary = sample_store.summary(site, collection)
        changes = week_changes.tile_changes(sample_store, summary, site, collection)
        previous = summary_from_metrics(history.aggregates(WEEK_AGO, site, collection))
        now, then = kpis.kpi_values(summary), kpis.kpi_values(previous)
        assert set(changes) == set(kpis.BY_ID)
        for tile in changes:
            assert changes[tile]["day"] == WEEK_AGO
            assert changes[tile]["delta"] == now[tile][0] - then[tile][0], (site, tile)
    stored = history.aggregates(WEEK_AGO)
    whole = week_changes.tile_changes(sample_store, sample_store.summary(), None, None)
    assert whole["kpi-comanaged"]["previous"] == stored["comanaged"]


def test_change_line_says_it_in_words():
    line = week_changes.change_line(
        "kpi-comanaged", {"delta": 89, "previous": 2641, "day": WEEK_AGO}
    )
    assert text_of(line) == "▲up +89 since 16 Nov 2026"
    assert "kpi-change-good" in line.className and line.title.startswith("Up 89 since")
    line = week_changes.change_line("kpi-failures", {"delta": 17, "previous": 429, "day": WEEK_AGO})
    assert "kpi-change-bad" in line.className
    line = week_changes.change_line(
        "kpi-attention", {"delta": -72, "previous": 2095, "day": WEEK_AGO}
    )
    assert text_of(line) == "▼down -72 since 16 Nov 2026" and "good" in line.className
    assert "no change" in text_of(
        week_changes.change_line("kpi-devices", {"delta": 0, "previous": 1, "day": WEEK_AGO})
    )
    assert week_changes.change_line("kpi-devices", None) is None


def test_overview_tiles_carry_the_changes(sample_store, sample_settings):
    out = overview.render(sample_store, sample_settings, None, None)
    line = find(out["ovw-kpis"][1], "kpi-comanaged-change")
    assert line is not None and line.to_plotly_json()["props"]["data-since"] == "2026-11-16"


def test_what_changed_panel_counts_equal_the_device_list(sample_store, sample_settings):
    for site, collection in ((None, None), ("PS1", None), (None, "CAS00110")):
        panel = week_changes.changes_panel(sample_store, sample_settings, site, collection)
        assert (
            find(panel, "chg-items").to_plotly_json()["props"]["data-since"] == WEEK_AGO.isoformat()
        )
        for kind in CHANGE_KINDS:
            shown = int(find(panel, f"chg-{kind}").children.replace(",", ""))
            href = find(panel, f"chg-{kind}-link").href
            assert href == changes_url(kind, WEEK_AGO, site, collection)
            query = {
                key: [value]
                for key, value in (part.split("=") for part in href.split("?", 1)[1].split("&"))
            }
            page = devices.layout(sample_store, sample_settings, "/devices", query)
            count = find(page, "devices-count").to_plotly_json()["props"]["data-count"]
            assert int(count) == shown, (site, collection, kind)
    panel = week_changes.changes_panel(sample_store, sample_settings, None, None)
    assert all(
        int(find(panel, f"chg-{kind}").children.replace(",", "")) > 0 for kind in CHANGE_KINDS
    )  # the sample shows each kind of change


def test_what_changed_sets_are_the_transitions(sample_store, history):
    estate = sample_store.estate
    before = history.device_states(WEEK_AGO).set_index(["site", "ResourceID"])
    now = estate.devices.assign(site=estate.devices["site"].astype(str)).set_index(
        ["site", "ResourceID"]
    )
    both = now.merge(before, left_index=True, right_index=True, how="left", suffixes=("", "_then"))
    was_comanaged = both["comanaged_then"].fillna(False).astype(bool)
    was_failed = both["failed_then"].fillna(False).astype(bool)
    expected = {
        "newly_comanaged": both["comanaged"] & ~was_comanaged,
        "newly_failed": both["failed"] & ~was_failed,
        "fell_back": both["comanaged_then"].notna() & was_comanaged & ~both["comanaged"],
    }
    changes = sample_store.changes(WEEK_AGO)
    for kind in CHANGE_KINDS:
        assert changes[kind].tolist() == expected[kind].tolist(), kind


def test_what_changed_without_history(factory_store, factory_settings):
    panel = week_changes.changes_panel(factory_store, factory_settings, None, None)
    assert "History is off" in text_of(panel)
    assert week_changes.tile_changes(factory_store, factory_store.summary(), None, None) == {}


# -- the device list's changed filter --------------------------------------------------------------


def test_changed_filter_is_validated(sample_store):
    flt = sample_store.device_filter({"changed": ["newly_failed"], "since": ["2026-11-16"]})
    assert flt.values == {"changed": ("newly_failed",), "since": ("2026-11-16",)}
    assert not flt.rejected
    for query, why in (
        ({"changed": ["newly_failed"]}, "changed: needs since"),
        ({"since": ["2026-11-16"]}, "since: needs changed"),
        ({"changed": ["exploded"], "since": ["2026-11-16"]}, "not a known"),
        ({"changed": ["fell_back"], "since": ["2026-11-17"]}, "not a known"),
        ({"changed": ["fell_back"], "since": ["2026-06-01"]}, "not a known"),
    ):
        flt = sample_store.device_filter(query)
        assert "changed" not in flt.values and any(why in r for r in flt.rejected), query
    # 2026-06-01 has aggregates only: its device states were pruned (device_history_days).


def test_changed_chips_say_what_they_filter(sample_store, sample_settings):
    page = devices.layout(
        sample_store,
        sample_settings,
        "/devices",
        {"changed": ["fell_back"], "since": ["2026-11-16"]},
    )
    chips = text_of(find(page, "devices-chips"))
    assert "Changed: Fell back out of co-management" in chips and "Since: 2026-11-16" in chips
    flt = sample_store.device_filter(
        {"changed": ["fell_back", "newly_failed"], "since": ["2026-11-16"], "site": ["PS1"]}
    )
    links = {
        chip.to_plotly_json()["props"]["data-filter"]: chip.href
        for chip in devices.chips(flt, sample_settings, sample_store.estate)
    }
    assert links["since=2026-11-16"] == "/devices?site=PS1"  # removed together
    assert links["changed=fell_back"] == "/devices?changed=newly_failed&since=2026-11-16&site=PS1"
    assert links["site=PS1"] == "/devices?changed=fell_back&changed=newly_failed&since=2026-11-16"


# -- device page -----------------------------------------------------------------------------------


def test_device_page_shows_time_in_state_and_the_timeline(sample_store, sample_settings):
    from dashboard.model.attention import RULE_BITS

    frame = sample_store.estate.devices
    device = frame[(frame["attention"] & RULE_BITS["stuck"]) != 0].iloc[0]
    page = device_layout(
        sample_store,
        sample_settings,
        f"/device/{device['ResourceID']}",
        {"site": [str(device["site"])]},
    )
    since = text_of(find(page, "device-since"))
    assert since.startswith("Enrollment under way since ") and "stuck: more than 14" in since
    timeline = find(page, "device-timeline")
    assert timeline is not None
    rows = timeline.children[1].children
    assert rows and text_of(rows[0].children[1]) == "2026-11-23"  # newest first
    attention = text_of(find(page, "device-attention"))
    assert "Enrollment stuck" in attention

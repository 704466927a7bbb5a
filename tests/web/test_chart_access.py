"""The charts' keyboard and screen-reader route, the shared chart config, readable text
colours, the column chooser's data and compressed responses (no browser)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from dashboard.model.device_columns import OPTIONAL_COLUMNS, optional_columns
from dashboard.web import chart_tables, figures
from dashboard.web.app import create_app
from dashboard.web.pages import devices, overview
from dashboard.web.pages.report import STATIC
from dashboard.web.panels import definitions_panel


def test_one_chart_config_offers_download_only():
    config = figures.GRAPH_CONFIG
    assert config["modeBarButtons"] == [["toImage"]]
    assert config["displaylogo"] is False
    assert config["showSendToCloud"] is False and config["showEditInChartStudio"] is False
    assert config["showLink"] is False
    assert STATIC["displayModeBar"] is False and STATIC["staticPlot"] is True


def test_every_overview_chart_has_no_drag_zoom(sample_store, sample_settings):
    out = overview.render(sample_store, sample_settings, None, None)
    for graph_id in overview.GRAPHS:
        fig = out[graph_id]
        assert fig.layout.dragmode is False, graph_id
        full = fig.to_dict()["layout"]
        for axis in ("xaxis", "yaxis"):
            template_axis = full["template"]["layout"][axis]
            assert full.get(axis, {}).get("fixedrange", template_axis["fixedrange"]) is True


@pytest.mark.parametrize("color", list(figures.COLORS.values()))
def test_text_on_every_chart_colour_reads_at_4_5(color):
    assert figures.contrast(figures.text_on(color), color) >= 4.5


def test_slice_labels_read_on_their_slices(sample_summary):
    fig = figures.enrollment_status_figure(sample_summary)
    trace = fig.data[0]
    for color, text_color in zip(trace.marker.colors, trace.insidetextfont.color, strict=True):
        assert figures.contrast(color, text_color) >= 4.5
    assert figures.contrast("#E69F00", figures.text_on("#E69F00")) > 8  # the orange slice


@pytest.fixture(scope="module")
def sample_summary(sample_store):
    return sample_store.summary(None, None)


def test_table_links_are_the_chart_click_targets(sample_store, sample_settings):
    """Every count link of every table view opens what a click on that point opens."""
    out = overview.render(sample_store, sample_settings, "PS1", None)
    for graph_id in overview.GRAPHS:
        fig = out[graph_id]
        table = chart_tables.chart_table(fig, "t", "t", "PS1", None)
        links = [
            cell.children.href
            for row in table.children[1].children.children[2].children
            for cell in row.children[1:]
            if cell is not None and hasattr(cell.children, "href")
        ]
        expected = []
        for point in chart_tables.points(fig):
            if point.value:
                click = {"points": [{"customdata": point.fragment}]}
                expected.append(
                    overview.navigate(click, "PS1", None, sample_store, sample_settings)
                )
        assert sorted(links) == sorted(expected), graph_id
        assert links, graph_id


def test_stacked_bars_become_a_grid(sample_summary):
    fig = figures.workloads_figure(sample_summary)
    table = chart_tables.chart_table(fig, "Workloads", "w", category_header="Workload")
    head = table.children[1].children.children[1].children.children
    assert [th.children for th in head] == [
        "Workload",
        "Configuration Manager",
        "Pilot Intune",
        "Intune",
    ]


def test_summary_names_points_and_empty_charts():
    fig = figures.empty_figure("No devices match this filter")
    assert chart_tables.chart_summary(fig, "Chart") == "Chart: No devices match this filter."
    assert chart_tables.chart_table(fig, "Chart", "c") is None
    summary = {"devices": 3, "os_groups": {"Server": 1, "Other": 2}}
    text = chart_tables.chart_summary(figures.os_groups_figure(summary), "OS")
    assert text == "OS: Server 1; Other 2."


def test_definitions_explain_the_inactive_difference(sample_settings):
    text = str(definitions_panel(sample_settings))
    assert "Why the prerequisite's inactive count differs from the rule's" in text
    assert "stuck_days" not in text
    assert f"{sample_settings.client_inactive_days} days" in text


def test_optional_columns():
    frame = pd.DataFrame(
        {
            "LastPolicyRequest": pd.to_datetime(["2026-11-20 10:00", None, "2026-11-10 13:00"]),
            "LastActiveTime": pd.to_datetime(["2026-11-21 08:30", None, None]),
            "Domain": ["CONTOSO", None, "LAB"],
            "os_group": ["Server", "Other", "Server"],
        }
    )
    rows = optional_columns(
        frame,
        np.array([2, 0, 1]),
        "2026-11-20T12:00:00+00:00",
        {"All Systems": np.array([True, True, True]), "Pilot": np.array([False, False, True])},
    )
    assert [r["policy_age_days"] for r in rows] == [9, 0, None]
    assert [r["collections"] for r in rows] == ["All Systems, Pilot", "All Systems", "All Systems"]
    assert rows[0]["domain"] == "LAB" and rows[2]["domain"] == ""
    assert rows[1]["last_active"] == "2026-11-21 08:30" and rows[0]["last_active"] == ""
    assert set(rows[0]) == set(OPTIONAL_COLUMNS)


def test_column_choice_is_stored_and_restored():
    assert devices.remember_columns("devices-column-choice", ["domain", "bogus"], None) == (
        ["domain"],
        devices.no_update,
    )
    assert devices.remember_columns(None, [], ["collections", 3, "x"]) == (
        devices.no_update,
        ["collections"],
    )
    assert devices.remember_columns(None, [], "not a list") == (devices.no_update, [])
    fields = [c["field"] for c in devices.column_defs(["policy_age_days", "collections"])]
    assert fields[:4] == ["name", "site", "collections", "policy_age_days"]


def test_static_files_and_data_are_compressed_pages_are_not(sample_settings, sample_store):
    app = create_app(sample_settings, sample_store)
    client = app.server.test_client()
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200 and "Content-Encoding" not in page.headers
    assert '<html lang="en">' in page.get_data(as_text=True)
    script = next(url for url in _scripts(page.get_data(as_text=True)) if "dash_renderer" in url)
    first = client.get(script, headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip"
    plain = client.get(script)
    assert len(first.data) < len(plain.data) / 2
    assert client.get(script, headers={"Accept-Encoding": "gzip"}).data == first.data
    layout = client.get("/_dash-layout", headers={"Accept-Encoding": "gzip"})
    assert layout.headers["Content-Encoding"] == "gzip"
    assert "Content-Security-Policy" in layout.headers


def _scripts(html: str) -> list[str]:
    return re.findall(r'<script src="([^"]+)"', html)


def _graphs(component):
    """Every dcc.Graph in a component tree."""
    from dash import dcc

    if isinstance(component, dcc.Graph):
        yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            yield from _graphs(child)


def test_every_graph_uses_the_shared_config(sample_store, sample_settings):
    from dashboard.web.pages import report, trends

    found = 0
    for page, path in ((overview, "/"), (trends, "/trends"), (report, "/report")):
        for graph in _graphs(page.layout(sample_store, sample_settings, path, {})):
            found += 1
            assert graph.config in (figures.GRAPH_CONFIG, figures.STATIC_CONFIG), graph.id
    assert found >= len(overview.GRAPHS) + 5

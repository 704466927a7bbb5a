"""History in a real headless Chromium: the trends page, the overview's week-over-week
figures and "What changed", and the device list behind each change (the bundled sample with
its 26 weekly snapshots, served read-only)."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard.model.trends import CHANGE_KINDS, summary_from_metrics
from dashboard.report.capture import wait_for_dash
from dashboard.web.pages.overview import GRAPHS, kpi_values

pytestmark = pytest.mark.browser

WEEK_AGO = date(2026, 11, 16)
READ_TRACES = """id => {
  const div = document.querySelector('#' + id + ' .js-plotly-plot');
  if (!div || !div.data) return null;
  return {traces: div.data.map(t => ({name: t.name, x: Array.from(t.x || []),
                                       y: Array.from(t.y || []), visible: t.visible})),
          empty: (div.layout.meta || {}).empty || null};
}"""
TREND_GRAPHS = ("trd-share", "trd-funnel", "trd-workloads", "trd-failures", "trd-attention")


@pytest.fixture(scope="module")
def history(sample_store):
    assert sample_store.history is not None, "the bundled sample ships history.sqlite"
    return sample_store.history


def open_trends(page, base: str, search: str = "") -> None:
    page.goto(base + "/trends" + search)
    wait_for_dash(page, graphs=len(TREND_GRAPHS))
    page.wait_for_function(
        "ids => ids.every(id => { const d = document.querySelector('#' + id + "
        "' .js-plotly-plot'); return d && d.data && d.data.length; })",
        arg=TREND_GRAPHS,
    )


def test_trd001_trends_draws_its_charts_without_console_errors(page, sample_server, history):
    open_trends(page, sample_server)
    days = [day.isoformat() for day in history.days()]
    for graph_id in TREND_GRAPHS:
        drawn = page.evaluate(READ_TRACES, graph_id)
        assert drawn["empty"] is None, graph_id
        for trace in drawn["traces"]:
            assert trace["x"] == days, (graph_id, trace["name"])
    # Every chart really drew its lines (SVG paths), not only received data.
    assert page.locator("#trd-share .scatterlayer .trace path.js-line").count() == 1
    assert page.locator("#trd-funnel .scatterlayer .trace").count() == 4
    frame = history.trend()
    share = page.evaluate(READ_TRACES, "trd-share")["traces"][0]["y"]
    assert share[-1] == pytest.approx(100 * frame["comanaged"].iloc[-1] / frame["devices"].iloc[-1])
    assert page.inner_text("#trd-scope").startswith(f"{len(days)} snapshots from")
    assert page.locator("nav .nav-link.active").inner_text() == "Trends"
    outside = [u for u in page.watch.requests if not u.startswith(sample_server)]
    assert outside == []
    assert page.watch.errors == []


def test_trd002_filters_and_dates_come_from_the_url(page, sample_server, history):
    open_trends(page, sample_server, "?site=PS1&collection=CAS00102&from=2026-09-01&to=2026-10-01")
    page.wait_for_function(
        "() => { const d = document.querySelector('#trd-share .js-plotly-plot'); "
        "return d && d.data && d.data[0].x.length === 4; }"
    )
    drawn = page.evaluate(READ_TRACES, "trd-share")["traces"][0]
    assert drawn["x"] == ["2026-09-07", "2026-09-14", "2026-09-21", "2026-09-28"]
    frame = history.trend("PS1", "CAS00102")
    assert drawn["y"][0] == pytest.approx(
        100 * frame.loc[date(2026, 9, 7), "comanaged"] / frame.loc[date(2026, 9, 7), "devices"]
    )
    assert page.input_value("#trd-from") == "2026-09-01"
    assert "site PS1" in page.inner_text("#trd-scope")
    assert page.watch.errors == []


def test_trd003_week_over_week_figures_match_the_history(
    page, sample_server, sample_store, history
):
    page.goto(sample_server + "/")
    wait_for_dash(page, graphs=len(GRAPHS))
    page.wait_for_selector("#kpi-comanaged-change")
    page.wait_for_selector("#chg-newly_comanaged")
    now = kpi_values(sample_store.summary())
    then = kpi_values(summary_from_metrics(history.aggregates(WEEK_AGO)))
    for tile in now:
        line = page.locator(f"#{tile}-change")
        assert line.get_attribute("data-since") == WEEK_AGO.isoformat()
        delta = now[tile][0] - then[tile][0]
        assert int(line.get_attribute("data-delta")) == delta, tile
        text = line.inner_text()
        assert (f"{delta:+,}" if delta else "no change") in text
        assert ("▲" in text) == (delta > 0) and ("▼" in text) == (delta < 0)
        assert "since 16 Nov 2026" in text
    changes = sample_store.changes(WEEK_AGO)
    for kind in CHANGE_KINDS:
        shown = int(page.get_attribute(f"#chg-{kind}", "data-count"))
        assert shown == int(changes[kind].sum()) > 0, kind
    assert page.watch.errors == []


@pytest.mark.parametrize("kind", CHANGE_KINDS)
def test_trd004_a_change_opens_exactly_those_devices(page, sample_server, sample_store, kind):
    page.goto(sample_server + "/?site=PS1")
    wait_for_dash(page, graphs=len(GRAPHS))
    page.wait_for_function(
        "() => (document.getElementById('chg-since') || {}).textContent?.includes('16 Nov 2026')"
    )
    page.wait_for_function(
        "() => (document.getElementById('ovw-scope') || {}).textContent?.includes('site PS1')"
    )
    page.wait_for_function("() => !document.querySelector('[data-dash-is-loading=\"true\"]')")
    shown = int(page.get_attribute(f"#chg-{kind}", "data-count"))
    page.click(f"#chg-{kind}-link")
    page.wait_for_selector("#devices-count")
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"changed": [kind], "since": ["2026-11-16"], "site": ["PS1"]}
    assert int(page.get_attribute("#devices-count", "data-count")) == shown
    assert page.locator(f"#devices-chips [data-filter='changed={kind}']").count() == 1
    expected = int(
        (
            sample_store.changes(WEEK_AGO)[kind]
            & (sample_store.estate.devices["site"] == "PS1").to_numpy()
        ).sum()
    )
    assert shown == expected
    assert page.watch.errors == []

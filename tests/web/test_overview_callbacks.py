"""The overview's callbacks and the shell, called as plain functions (no browser)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from dash import no_update
from dash._utils import to_json

from dashboard import cli
from dashboard.labels import FUNNEL_LABELS, enrollment_status_labels
from dashboard.model.kpis import BY_ID, attention_devices
from dashboard.service.store import EstateStore
from dashboard.settings import load_settings
from dashboard.web import app as web_app
from dashboard.web import figures
from dashboard.web.encode_once import encoded_once
from dashboard.web.pages import overview
from tests.helpers import by_id, router_request, text_of, walk

ROOT = Path(__file__).resolve().parents[2]


# -- filters -----------------------------------------------------------------------------------


def test_checked_filters_accepts_configured_values(factory_store, factory_settings):
    assert overview.checked_filters(factory_store, factory_settings, "PS1", "CAS00101") == (
        "PS1",
        "CAS00101",
        [],
    )
    assert overview.checked_filters(factory_store, factory_settings, "ps1", None) == (
        "PS1",
        None,
        [],
    )
    # CAS00101 has members in PS1 only: kept (it is what was asked), and the note says why
    # the view is empty
    site, collection, notes = overview.checked_filters(
        factory_store, factory_settings, "PS2", "CAS00101"
    )
    assert (site, collection) == ("PS2", "CAS00101")
    assert notes == [
        "Collection Windows 11 devices (CAS00101) has no devices in site PS2: "
        "its members are in other sites."
    ]


@pytest.mark.parametrize(
    ("site", "collection", "noted"),
    [
        ("NOPE", None, 'Unknown site "NOPE"'),
        (None, "CAS99999", 'Unknown collection "CAS99999"'),
        (None, "CAS00102", "Unknown collection"),  # a pilot collection, not a page filter
        (["PS1"], None, "Unknown site"),
        ("<script>" * 20, None, "..."),
    ],
)
def test_checked_filters_ignores_unknown_values_with_a_note(
    factory_store, factory_settings, site, collection, noted
):
    checked_site, checked_collection, notes = overview.checked_filters(
        factory_store, factory_settings, site, collection
    )
    assert checked_site is None and checked_collection is None
    assert len(notes) == 1 and noted in notes[0]


def test_dropdown_change_writes_the_url(factory_store, factory_settings):
    search, site, collection, note = overview.sync_filters(
        factory_store, factory_settings, "ovw-collection", "", None, "CAS00101"
    )
    assert search == "?collection=CAS00101"
    assert site is no_update and collection is no_update and note is None
    search, *_ = overview.sync_filters(
        factory_store, factory_settings, "ovw-site", "?collection=CAS00101", "PS1", "CAS00101"
    )
    assert search == "?site=PS1&collection=CAS00101"
    search, *_ = overview.sync_filters(
        factory_store, factory_settings, "ovw-site", "?site=PS1", "PS1", None
    )
    assert search is no_update  # unchanged


def test_url_change_sets_the_dropdowns(factory_store, factory_settings):
    out = overview.sync_filters(
        factory_store, factory_settings, "ovw-url", "?site=PS2&collection=CAS00101", None, None
    )
    assert out[:3] == (no_update, "PS2", "CAS00101")
    # back to no filter (the back button): the dropdowns are cleared
    out = overview.sync_filters(factory_store, factory_settings, "ovw-url", "", "PS2", "CAS00101")
    assert out[:3] == (no_update, None, None)
    # first render: the layout already holds the URL's values, nothing to change
    out = overview.sync_filters(factory_store, factory_settings, None, "?site=PS2", "PS2", None)
    assert out == (no_update, no_update, no_update, None)


def test_unknown_url_value_is_noted_and_not_used(factory_store, factory_settings):
    _search, site, _collection, note = overview.sync_filters(
        factory_store, factory_settings, "ovw-url", "?site=<b>X</b>", None, None
    )
    assert site is no_update  # stays None
    assert 'Unknown site "<b>X</b>" ignored' in text_of(note)


def test_leaving_the_page_changes_nothing(factory_store, factory_settings):
    out = overview.sync_filters(
        factory_store,
        factory_settings,
        "ovw-url",
        "?error=0x1&site=PS1",
        None,
        None,
        pathname="/devices",
    )
    assert out == (no_update,) * 4


def test_layout_restores_the_filters_from_the_url(factory_store, factory_settings):
    page = overview.layout(
        factory_store, factory_settings, "/", {"site": ["PS1"], "collection": ["CAS00101"]}
    )
    assert by_id(page, "ovw-site").value == "PS1"
    assert by_id(page, "ovw-collection").value == "CAS00101"
    options = by_id(page, "ovw-collection").options
    assert options == [
        {"label": "All Systems (SMS00001)", "value": "SMS00001"},
        {"label": "Windows 11 devices (CAS00101)", "value": "CAS00101"},
    ]
    assert [o["value"] for o in by_id(page, "ovw-site").options] == ["PS1", "PS2"]
    bad = overview.layout(factory_store, factory_settings, "/", {"site": ["XX"]})
    assert by_id(bad, "ovw-site").value is None
    assert 'Unknown site "XX" ignored' in text_of(by_id(bad, "ovw-filter-note"))


# -- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site", "collection"), [(None, None), ("PS1", None), (None, "CAS00101"), ("PS2", "SMS00001")]
)
def test_render_draws_the_summary(factory_store, factory_settings, site, collection):
    summary = factory_store.summary(site, collection)
    out = overview.render(factory_store, factory_settings, site, collection)
    assert set(out) == set(overview.RENDER_OUTPUTS)
    groups = out["ovw-os-groups"].data[0]
    assert dict(zip(groups.labels, groups.values, strict=True)) == {
        k: v for k, v in summary["os_groups"].items() if v
    }
    funnel = out["ovw-funnel"].data[0]
    assert dict(zip(funnel.y, funnel.x, strict=True)) == {
        FUNNEL_LABELS[k]: v for k, v in summary["funnel"].items()
    }
    status = out["ovw-status"].data[0]
    labels = enrollment_status_labels(factory_settings.status_labels)
    assert dict(zip(status.labels, status.values, strict=True)) == {
        labels[k]: v for k, v in summary["enrollment_status"].items() if v
    }

    legend = out["ovw-os-table"]
    links = [c for c in walk(legend) if getattr(c, "href", None)]
    assert [c.children for c in links[:-1]] == list(summary["os_groups"])
    # each group lists the devices it counts: the client devices of that group
    assert links[2].href.startswith("/devices?os_group=Windows%207%20%26%208.x&client=1")
    # the records the OS figures leave out, said and linked
    without = summary["without_client"]
    assert without > 0
    assert links[-1].children == f"{without:,} records without the ConfigMgr client are not counted"
    scope = "".join(f"&{k}={v}" for k, v in (("site", site), ("collection", collection)) if v)
    assert links[-1].href == "/devices?client=0" + scope
    note = by_id(legend, "ovw-without-client").to_plotly_json()["props"]
    assert note["data-count"] == str(without)
    for group, count in summary["os_groups"].items():
        assert f"{count:,}" in text_of(legend) and group in text_of(legend)

    kpis = out["ovw-kpis"]
    shown = {tile_id: int(by_id(kpis, tile_id).children.replace(",", "")) for tile_id in BY_ID}
    status_counts = summary["enrollment_status"]
    assert shown == {
        "kpi-devices": summary["devices"],
        "kpi-comanaged": summary["comanaged"],
        "kpi-eligible": summary["funnel"]["eligible"] - summary["funnel"]["enrolled"],
        "kpi-failures": status_counts["failure_hybrid"] + status_counts["failure_aad"],
        "kpi-attention": summary["attention_devices"],
    }
    hrefs = [c.href for c in walk(kpis) if getattr(c, "href", None)]
    scope = "".join(f"&{k}={v}" for k, v in (("site", site), ("collection", collection)) if v)
    assert hrefs[1] == "/devices?comanaged=1" + scope
    assert hrefs[4] == "/devices?attention=any" + scope
    assert f"{summary['devices']:,} devices" in out["ovw-scope"]


def test_attention_falls_back_without_the_rules():
    summary = {
        "enrollment_status": {"failure_hybrid": 3, "failure_aad": 1, "pending_user_sign_in": 2}
    }
    assert attention_devices(summary) == 6
    assert attention_devices({**summary, "attention_devices": 9}) == 9


def test_error_rows_link_to_the_device_list(factory_store, factory_settings):
    summary = factory_store.summary(None, "SMS00001")
    table = overview.errors_table(summary, None, "SMS00001")
    rows = [c for c in walk(table) if getattr(c, "className", "") == "error-row"]
    assert len(rows) == len(summary["enrollment_errors"])
    for row, error in zip(rows, summary["enrollment_errors"], strict=True):
        link = next(c for c in walk(row) if getattr(c, "href", None))
        assert link.href == f"/devices?error={error['code']}&collection=SMS00001"
        assert f"{error['count']:,}" in text_of(row)
    text = text_of(table)
    assert "Let users complete MFA" in text  # the fix from the catalogue
    assert '<img src=x onerror="window.__xss=1">' in text  # device text stays plain text


def test_no_devices_message_everywhere(factory_store, factory_settings, monkeypatch):
    estate = factory_store.estate
    from dashboard.model.summary import summarize

    empty = summarize(estate.devices.iloc[0:0], [], estate.data_as_of)
    monkeypatch.setattr(factory_store, "summary", lambda site=None, collection=None: empty)
    # drawn afresh (not the page this store drew for its real data, which it keeps)
    monkeypatch.setattr(factory_store, "memo", lambda _key, compute: compute())
    out = overview.render(factory_store, factory_settings, None, None)
    for graph_id in overview.GRAPHS:
        assert out[graph_id].layout.meta["empty"] == figures.NO_DEVICES
    assert text_of(out["ovw-errors"]) == figures.NO_DEVICES


def test_a_scope_is_drawn_once_per_loaded_estate(factory_settings):
    store = EstateStore(factory_settings)
    store.refresh()
    first = overview.render(store, factory_settings, "PS1", None)
    opened = overview.render(store, factory_settings, "PS1", None, opened=["ovw-funnel"])
    again = overview.render(store, factory_settings, "PS1", None)
    assert again["ovw-funnel"] is first["ovw-funnel"]  # drawn once: the same figure
    assert opened["ovw-funnel-view-body"].id == "ovw-funnel-table"
    assert again["ovw-funnel-view-body"] is first["ovw-funnel-view-body"]  # not the table
    assert overview.render(store, factory_settings, "PS2", None)["ovw-scope"] != first["ovw-scope"]
    store.refresh()  # new data: drawn again
    assert (
        overview.render(store, factory_settings, "PS1", None)["ovw-funnel"]
        is not (first["ovw-funnel"])
    )


def test_parts_drawn_once_are_sent_as_dash_would_encode_them(factory_settings):
    store = EstateStore(factory_settings)
    store.refresh()
    out = overview.render(store, factory_settings, "PS1", None)
    fresh = overview._render_scope(store, factory_settings, "PS1", None)
    for key, value in fresh.items():
        if key.endswith("-view-body"):
            continue
        assert to_json(out[key]) == to_json(value), key  # the same JSON, made once
    errors = out["ovw-errors"]
    assert errors.to_plotly_json() is errors.to_plotly_json()
    assert by_id(errors, "ovw-errors-table") is not None  # still components to Python
    assert isinstance(encoded_once(["text", None]), list)


def test_render_before_the_first_load(factory_settings):
    store = EstateStore(factory_settings)
    out = overview.render(store, factory_settings, None, None)
    assert out["ovw-funnel"].layout.meta["empty"] == "Loading data ..."
    assert "-" in text_of(out["ovw-kpis"])


# -- navigation --------------------------------------------------------------------------------


def _click(customdata):
    return {"points": [{"curveNumber": 0, "pointNumber": 1, "customdata": customdata}]}


def test_click_opens_the_device_list_with_the_page_scope(factory_store, factory_settings):
    url = overview.navigate(
        _click("os_group=Windows%207%20%26%208.x"),
        "PS1",
        "CAS00101",
        factory_store,
        factory_settings,
    )
    assert url == "/devices?os_group=Windows%207%20%26%208.x&site=PS1&collection=CAS00101"
    url = overview.navigate(
        _click("workload=client_apps&authority=intune"), None, None, factory_store, factory_settings
    )
    assert url == "/devices?workload=client_apps&authority=intune"


@pytest.mark.parametrize(
    "click",
    [None, {}, {"points": []}, _click(None), _click("x=1"), _click(["javascript:alert(1)"])],
)
def test_forged_or_empty_clicks_go_nowhere(factory_store, factory_settings, click):
    assert overview.navigate(click, None, None, factory_store, factory_settings) is no_update


def test_click_drops_an_unknown_scope(factory_store, factory_settings):
    url = overview.navigate(
        _click("reason=no-client"), "EVIL", None, factory_store, factory_settings
    )
    assert url == "/devices?reason=no-client"


# -- shell: router, header, polling ------------------------------------------------------------


def test_router(factory_store, factory_settings):
    assert web_app.find_page("/") is overview
    assert web_app.find_page("") is overview
    page = web_app.route(factory_store, factory_settings, "/", "?site=PS1")
    assert by_id(page, "ovw-site").value == "PS1"
    missing = web_app.route(factory_store, factory_settings, "/nowhere", "")
    assert "Page not found" in text_of(missing)
    devices = web_app.route(factory_store, factory_settings, "/devices", "?error=0x8018002A")
    assert "0x8018002A" in text_of(devices)


def test_header_shows_sources_and_dropped_rows(factory_store):
    status = text_of(web_app.data_status(factory_store))
    assert "Data as of" in status and "2026-11-20 12:00 UTC" in status
    assert "PS1: CSV, 400 rows, 1 dropped" in status and "PS2: CSV, 200 rows" in status
    alerts = web_app.data_alerts(factory_store)
    text = text_of(alerts)
    assert "Site PS1: 1 of 400 rows were dropped at load (1 bad MDMEnrolled)" in text
    assert 'MDMEnrolled "maybe"' in text


def test_stale_banner_when_a_refresh_fails(factory_settings, factory_store):
    calls = []

    def loader(settings):
        calls.append(1)
        if len(calls) > 1:
            raise OSError("devices.csv: permission denied")
        return factory_store.estate

    store = EstateStore(factory_settings, loader=loader)
    assert store.refresh()
    token = web_app.status_token(store)
    assert not store.refresh()
    assert web_app.status_token(store) != token
    banner = by_id(web_app.data_alerts(store), "stale-banner")
    assert "Data is stale since" in text_of(banner)
    assert "because the last refresh failed: devices.csv: permission denied" in text_of(banner)


def test_poll_reports_new_data_only_when_it_changes(factory_settings, factory_store):
    store = EstateStore(factory_settings, loader=lambda settings: factory_store.estate)
    store.refresh()
    version, token, interval = web_app.poll(store, None, None)
    assert version == store.version and interval == web_app.POLL_MS
    assert web_app.poll(store, version, token)[:2] == (no_update, no_update)
    store.refresh()
    assert web_app.poll(store, version, token)[0] == store.version


def test_refresh_button_asks_the_store_and_polls_fast_until_it_reacts(
    factory_settings, factory_store
):
    store = EstateStore(factory_settings, loader=lambda settings: factory_store.estate)
    store.refresh()
    assert web_app.refresh_control(store, False, None, now=1000.0)[0] == ""
    note, disabled, title, pending, interval = web_app.refresh_control(
        store, True, None, now=1000.0
    )
    assert note.startswith("Refresh requested ...") and interval == web_app.POLL_BUSY_MS
    assert disabled and title == "Next manual refresh possible at 00:17:40 UTC"
    assert store._wake.is_set()
    version, token = store.version, web_app.status_token(store)
    # nothing happened yet: keep polling fast, but not forever
    assert web_app.poll(store, version, token, pending, now=1001.0)[2] == web_app.POLL_BUSY_MS
    assert web_app.poll(store, version, token, pending, now=1000.0 + 999)[2] == web_app.POLL_MS
    store.refresh()  # the store reacted: back to the slow pace, new version reported
    assert web_app.poll(store, version, token, pending, now=1002.0) == (
        store.version,
        web_app.status_token(store),
        web_app.POLL_MS,
    )
    # the result stays on the page, with the time the next manual refresh is possible
    note, disabled, _title, pending, _ = web_app.refresh_control(store, False, pending, now=1002.0)
    devices = len(factory_store.estate.devices)
    assert re.fullmatch(
        rf"Refreshed at \d\d:\d\d:\d\d UTC: {devices} devices\. Next manual "
        r"refresh possible at 00:17:40 UTC\.",
        note,
    ), note
    assert disabled and pending["result"].startswith("Refreshed at")
    note, disabled, title, _pending, _ = web_app.refresh_control(store, False, pending, now=1061.0)
    assert note.startswith("Refreshed at") and "Next manual" not in note
    assert not disabled and title == "Load the data from the sources now"
    # a throttled page polls again when the button may be used
    assert (
        web_app.poll(store, store.version, web_app.status_token(store), None, now=1055.0)[2] == 5500
    )


# -- the app as a whole ------------------------------------------------------------------------


def test_two_apps_in_one_process(factory_settings, factory_store):
    first = web_app.create_app(factory_settings, factory_store)
    second = web_app.create_app(factory_settings, factory_store)
    assert first.callback_map.keys() == second.callback_map.keys()
    client = first.server.test_client()
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<title>Co-management</title>" in html
    assert "01-bootstrap.min.css" in html
    assert "cdn" not in html.lower() and "https://" not in html.split("_dash-config")[0]
    css = client.get("/assets/01-bootstrap.min.css").get_data(as_text=True)
    assert "Bootstrap" in css[:200] and "Licensed under MIT" in css[:300]


def test_router_callback_over_http(factory_settings, factory_store):
    app = web_app.create_app(factory_settings, factory_store)
    client = app.server.test_client()
    body = router_request("/nowhere")
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    assert "Page not found" in response.get_data(as_text=True)


def test_importing_the_app_loads_no_data():
    code = (
        "import threading, dashboard.web.app, dashboard.web.wsgi as w\n"
        "assert w._app is None\n"
        "assert not [t for t in threading.enumerate() if t.name == 'estate-refresh']\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COMANAGE_CONFIG": "/nonexistent.toml"},
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_wsgi_server_builds_from_the_environment(factory_config, monkeypatch):
    import dashboard.web.wsgi as wsgi

    monkeypatch.setenv("COMANAGE_CONFIG", str(factory_config))
    monkeypatch.setattr(wsgi, "_app", None)
    server = wsgi.server
    try:
        assert server.name and callable(server.wsgi_app)
        assert wsgi.app.store.settings.config_path == factory_config
        assert wsgi.app.store.wait_until_loaded(30)
    finally:
        wsgi.app.store.stop()


def test_serve_reports_a_busy_port(factory_config, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = cli.main(["serve", "--config", str(factory_config), "--port", str(port)])
    assert code == 2
    assert f"error: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_serve_settings_from_flags(factory_config):
    args = cli.build_parser().parse_args(
        ["serve", "--config", str(factory_config), "--host", "0.0.0.0", "--port", "9000", "--debug"]
    )
    settings = cli._settings(args)
    assert (settings.host, settings.port, args.debug) == ("0.0.0.0", 9000, True)
    defaults = cli._settings(
        cli.build_parser().parse_args(["serve", "--config", str(factory_config)])
    )
    assert (defaults.host, defaults.port) == ("127.0.0.1", 8050)
    assert load_settings(factory_config).refresh_minutes == 60

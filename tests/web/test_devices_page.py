"""The device list's server side, the device page and the CSV export, without a browser.

``devices.get_rows`` answers AG Grid's infinite-model requests; ``device.layout`` builds one
device's page; ``/export/devices.csv`` is exercised through Flask's test client. All run on
the small factory estate (two sites that reuse ResourceIDs, every category present).
"""

from __future__ import annotations

import csv
import io
import shutil

import pytest

from dashboard.model.attention import READINESS_IDS, RULES_BY_ID
from dashboard.model.errors import describe
from dashboard.settings import load_settings
from dashboard.store import EstateStore
from dashboard.web.app import create_app
from dashboard.web.pages import device, devices
from tests.factories import loaded_store
from tests.helpers import by_id, text_of, walk

FORMULA_NAMES = ('=HYPERLINK("http://x","y")', "+SUM(1,2)", "-2+3", "@cmd")


def request(start=0, end=100, sort=None):
    out = {"startRow": start, "endRow": end}
    if sort is not None:
        out["sortModel"] = sort
    return out


def all_rows(store, pairs, sort=None) -> list[dict]:
    """Every matching row, a grid block at a time (as the browser would page)."""
    rows, start = [], 0
    while True:
        block = devices.get_rows(store, request(start, start + devices.PAGE_SIZE, sort), pairs)
        rows += block["rowData"]
        start += devices.PAGE_SIZE
        if start >= block["rowCount"]:
            return rows


def words(tree) -> str:
    """A component's text with single spaces (``text_of`` joins children with a space)."""
    return " ".join(text_of(tree).split())


def count(store, query: dict) -> int:
    return int(store.matching(store.device_filter(query)).sum())


# -- get_rows ----------------------------------------------------------------------------------


def test_get_rows_pages_through_every_match_once(factory_store):
    pairs = [("site", "PS1")]
    first = devices.get_rows(factory_store, request(0, 100), pairs)
    second = devices.get_rows(factory_store, request(100, 200), pairs)
    total = count(factory_store, {"site": ["PS1"]})
    assert first["rowCount"] == second["rowCount"] == total > 200
    assert len(first["rowData"]) == len(second["rowData"]) == 100
    keys = [row["key"] for row in first["rowData"] + second["rowData"]]
    assert len(set(keys)) == 200
    assert all(row["site"] == "PS1" for row in first["rowData"] + second["rowData"])
    every = all_rows(factory_store, pairs)
    assert len(every) == total and len({row["key"] for row in every}) == total
    last = devices.get_rows(factory_store, request(total - 10, total + 90), pairs)
    assert len(last["rowData"]) == 10  # the last, partial page


def test_get_rows_default_order_is_most_severe_first(factory_store):
    rows = all_rows(factory_store, [])
    order = {"high": 0, "medium": 1, "low": 2, "": 3}
    ranks = [order[row["severity"]] for row in rows]
    assert ranks == sorted(ranks)
    row = next(r for r in rows if r["attention"])
    assert row["attention"] == [
        {"id": rule, "title": RULES_BY_ID[rule].title, "severity": RULES_BY_ID[rule].severity}
        for rule in [a["id"] for a in row["attention"]]
    ]
    assert row["key"] == f"{row['site']}:{row['resource_id']}"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 10_000, devices.MAX_BLOCK),  # a greedy request is capped
        (50, 40, 0),  # an end before the start is an empty block
        (-20, 5, 5),  # a negative start is the first row
        (0, None, devices.PAGE_SIZE),  # no end: one page
    ],
)
def test_get_rows_caps_the_window(factory_store, start, end, expected):
    block = devices.get_rows(factory_store, {"startRow": start, "endRow": end}, [])
    assert len(block["rowData"]) == expected
    assert block["rowCount"] == len(factory_store.estate.devices)


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_get_rows_sorts_by_name_case_insensitively(factory_store, direction):
    rows = all_rows(factory_store, [], [{"colId": "name", "sort": direction}])
    names = [row["name"].lower() for row in rows]
    assert names == sorted(names, reverse=direction == "desc")
    assert len(rows) == len(factory_store.estate.devices)


@pytest.mark.parametrize("column", ["bogus", "attention", "error", "__proto__"])
def test_unknown_or_unsortable_column_falls_back_to_severity(factory_store, column):
    asked = devices.get_rows(
        factory_store, request(0, 300, [{"colId": column, "sort": "desc"}]), []
    )
    default = devices.get_rows(factory_store, request(0, 300), [])
    assert [r["key"] for r in asked["rowData"]] == [r["key"] for r in default["rowData"]]


def test_get_rows_ignores_rejected_filters_like_the_page(factory_store, factory_settings):
    pairs = [("attention", "bogus"), ("site", "PS2"), ("colour", "blue"), ("error", "nope")]
    block = devices.get_rows(factory_store, request(0, 500), pairs)
    assert block["rowCount"] == count(factory_store, {"site": ["PS2"]})
    assert {row["site"] for row in block["rowData"]} == {"PS2"}
    page = devices.layout(
        factory_store, factory_settings, "/devices", {name: [value] for name, value in pairs}
    )
    shown = by_id(page, "devices-count")
    assert getattr(shown, "data-count") == str(block["rowCount"])
    rejected = text_of(by_id(page, "devices-rejected"))
    assert "attention=bogus" in rejected and "colour" in rejected and "error=nope" in rejected


def test_get_rows_without_a_request_or_data(factory_store, factory_settings):
    assert devices.get_rows(factory_store, None, []) == {"rowData": [], "rowCount": 0}
    assert devices.get_rows(EstateStore(factory_settings), request(), []) == {
        "rowData": [],
        "rowCount": 0,
    }


def test_readiness_and_attention_filters_match_the_summary(factory_store):
    summary = factory_store.summary()
    for step in summary["readiness"]:
        block = devices.get_rows(factory_store, request(0, 1), [("readiness", step["step"])])
        assert block["rowCount"] == step["failed"]
    for rule, number in summary["attention"].items():
        block = devices.get_rows(factory_store, request(0, 1), [("attention", rule)])
        assert block["rowCount"] == number
    block = devices.get_rows(factory_store, request(0, 1), [("attention", "any")])
    assert block["rowCount"] == summary["attention_devices"]


# -- chips -------------------------------------------------------------------------------------


def test_each_chip_links_to_the_list_without_its_value(factory_store, factory_settings):
    flt = factory_store.device_filter(
        {
            "enrollment_status": ["failure_hybrid", "failure_aad"],
            "site": ["PS1"],
            "readiness": ["joined"],
            "attention": ["not-joined"],
        }
    )
    chips = devices.chips(flt, factory_settings, factory_store.estate)
    by_filter = {getattr(chip, "data-filter"): chip for chip in chips}
    assert list(by_filter) == [
        "enrollment_status=failure_hybrid",
        "enrollment_status=failure_aad",
        "site=PS1",
        "readiness=joined",
        "attention=not-joined",
    ]
    assert by_filter["enrollment_status=failure_aad"].href == (
        "/devices?enrollment_status=failure_hybrid&site=PS1&readiness=joined&attention=not-joined"
    )
    assert by_filter["site=PS1"].href == (
        "/devices?enrollment_status=failure_hybrid&enrollment_status=failure_aad"
        "&readiness=joined&attention=not-joined"
    )
    assert "Fails prerequisite: Joined to Entra ID" in words(by_filter["readiness=joined"])
    assert "Needs attention: Not joined to Entra ID" in words(by_filter["attention=not-joined"])
    assert "Failure, Microsoft Entra joined" in words(by_filter["enrollment_status=failure_aad"])


def test_the_last_chip_leads_to_every_device(factory_store, factory_settings):
    flt = factory_store.device_filter({"q": ["PC1677700"]})
    (chip,) = devices.chips(flt, factory_settings, factory_store.estate)
    assert chip.href == "/devices"
    assert "Name contains: PC1677700" in words(chip)


def test_device_list_without_filters_says_so(factory_store, factory_settings):
    page = devices.layout(factory_store, factory_settings, "/devices", {})
    assert "All devices (no filter)" in text_of(by_id(page, "devices-chips"))
    assert by_id(page, "devices-export").href == "/export/devices.csv"


# -- the device page ---------------------------------------------------------------------------


def device_page(store, settings, path, query=None):
    return device.layout(store, settings, path, query or {})


@pytest.mark.parametrize(
    "path",
    [
        "/device/abc",
        "/device/-1",
        "/device/1.5",
        "/device/",
        "/device/12345678901234567890",
        "/device/1e5",
        "/device/%3Cscript%3E",
    ],
)
def test_malformed_device_id_is_not_found(factory_store, factory_settings, path):
    page = device_page(factory_store, factory_settings, path)
    assert page.id == "device-not-found"
    assert "a whole number" in text_of(page)


def test_unknown_device_is_not_found(factory_store, factory_settings):
    page = device_page(factory_store, factory_settings, "/device/999999999")
    assert page.id == "device-not-found"
    assert "No device with ResourceID 999999999" in text_of(page)
    rid = int(factory_store.estate.devices["ResourceID"].iloc[0])
    page = device_page(factory_store, factory_settings, f"/device/{rid}", {"site": ["NOPE"]})
    assert page.id == "device-not-found" and "for site NOPE" in text_of(page)


def test_resource_id_in_two_sites_lists_both(factory_store, factory_settings):
    frame = factory_store.estate.devices
    counts = frame.groupby("ResourceID").size()
    rid = int(counts[counts == 2].index[0])
    page = device_page(factory_store, factory_settings, f"/device/{rid}")
    hrefs = sorted(c.href for c in walk(page) if getattr(c, "href", None))
    assert hrefs == [f"/device/{rid}?site=PS1", f"/device/{rid}?site=PS2"]
    assert "exists in several sites" in text_of(page)
    for site in ("PS1", "PS2"):
        one = device_page(factory_store, factory_settings, f"/device/{rid}", {"site": [site]})
        assert one.id == "device-page"
        assert f"{rid}" in text_of(one) and site in text_of(one)


def test_failed_device_shows_the_fix_and_its_checklist(factory_store, factory_settings):
    frame = factory_store.estate.devices
    failed = frame[frame["failed"] & (frame["error_code"] == "0x8018002A")]
    row = failed.iloc[0]
    page = device_page(
        factory_store,
        factory_settings,
        f"/device/{int(row['ResourceID'])}",
        {"site": [str(row["site"])]},
    )
    error = text_of(by_id(page, "device-error"))
    assert "0x8018002A" in error
    assert describe("0x8018002A").fix in error
    items = by_id(page, "device-checklist").children
    assert [getattr(item, "data-step") for item in items] == list(READINESS_IDS)
    results = [getattr(item, "data-result") for item in items]
    failed_step = None if str(row["readiness"]) == "nan" else str(row["readiness"])
    if failed_step is None:
        assert results == ["pass"] * len(READINESS_IDS)
    else:
        at = READINESS_IDS.index(failed_step)
        assert results == ["pass"] * at + ["fail"] + ["skipped"] * (len(READINESS_IDS) - at - 1)
    attention = by_id(page, "device-attention")
    rules = [getattr(item, "data-rule") for item in attention.children]
    assert rules[0] == "enrollment-failed"
    assert describe("0x8018002A").fix in text_of(attention)


def test_device_page_for_a_device_that_fails_a_prerequisite(factory_store, factory_settings):
    frame = factory_store.estate.devices
    row = frame[frame["readiness"] == "joined"].iloc[0]
    page = device_page(
        factory_store,
        factory_settings,
        f"/device/{int(row['ResourceID'])}",
        {"site": [str(row["site"])]},
    )
    items = {
        getattr(i, "data-step"): getattr(i, "data-result")
        for i in by_id(page, "device-checklist").children
    }
    assert items["joined"] == "fail" and items["workstation"] == "pass"
    assert items["policy"] == "skipped"
    assert "What to do" in text_of(by_id(page, "device-checklist"))


# -- the CSV export ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def export_client(tmp_path_factory, factory_config):
    """The factory estate with device names a spreadsheet would run as formulas."""
    folder = tmp_path_factory.mktemp("formula-estate")
    shutil.copytree(factory_config.parent, folder, dirs_exist_ok=True)
    path = folder / "PS2" / "devices.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    for row, name in zip(rows, FORMULA_NAMES, strict=False):
        row["Name"] = name
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    settings = load_settings(folder / "comanage.toml")
    store = loaded_store(settings)
    app = create_app(settings, store)
    return app.server.test_client(), store


def read_csv(response) -> list[dict]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


@pytest.mark.parametrize(
    "query",
    [
        "enrollment_status=failure_hybrid&enrollment_status=failure_aad",
        "readiness=joined&site=PS1",
        "attention=any",
        "workload=compliance_policies&authority=pilot_intune",
        "",
    ],
)
def test_export_rows_equal_the_header_count_and_the_filter(export_client, query):
    client, store = export_client
    response = client.get("/export/devices.csv" + (f"?{query}" if query else ""))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    from dashboard.web.links import parse_query

    assert len(rows) == int(response.headers["X-Device-Count"]) == count(store, parse_query(query))
    assert len({(r["Site"], r["ResourceID"]) for r in rows}) == len(rows)


def test_export_count_equals_the_summary(export_client):
    client, store = export_client
    summary = store.summary()
    failures = (
        summary["enrollment_status"]["failure_hybrid"] + summary["enrollment_status"]["failure_aad"]
    )
    rows = read_csv(
        client.get(
            "/export/devices.csv?enrollment_status=failure_hybrid&enrollment_status=failure_aad"
        )
    )
    assert len(rows) == failures
    assert {row["State"].split(",")[0] for row in rows} == {"Failure"}
    for step in summary["readiness"]:
        response = client.get(f"/export/devices.csv?readiness={step['step']}")
        assert len(read_csv(response)) == step["failed"]


@pytest.mark.parametrize(
    "query",
    ["attention=bogus", "colour=blue", "error=nope", "authority=intune", "readiness=everything"],
)
def test_export_rejects_bad_filters(export_client, query):
    client, _store = export_client
    response = client.get(f"/export/devices.csv?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert "Rejected filters" in response.get_data(as_text=True)


def test_export_neutralises_formulas_in_device_text(export_client):
    client, _store = export_client
    rows = read_csv(client.get("/export/devices.csv?site=PS2"))
    names = {row["Name"] for row in rows}
    for name in FORMULA_NAMES:
        assert "'" + name in names
        assert name not in names
    assert all(not row["Name"].startswith(("=", "+", "-", "@")) for row in rows)


# -- the OS figures' filters (client devices) ----------------------------------------------------


def test_client_filter_lists_what_the_os_figures_count(factory_store, factory_settings):
    summary = factory_store.summary()
    assert summary["without_client"] > 0
    assert count(factory_store, {"client": ["0"]}) == summary["without_client"]
    assert count(factory_store, {"client": ["1"]}) == summary["devices"] - summary["without_client"]
    for group, number in summary["os_groups"].items():
        assert count(factory_store, {"os_group": [group], "client": ["1"]}) == number
    for release, number in summary["os_releases"].items():
        assert count(factory_store, {"release": [release], "client": ["1"]}) == number
    flt = factory_store.device_filter({"client": ["0", "maybe"]})
    assert flt.values == {"client": ("0",)} and flt.rejected == ["client=maybe: not a known value"]
    (chip,) = devices.chips(flt, factory_settings, factory_store.estate)
    assert "ConfigMgr client: not installed" in words(chip)


def test_export_honours_the_client_filter(export_client):
    client, store = export_client
    summary = store.summary()
    response = client.get("/export/devices.csv?client=0&site=PS1")
    rows = read_csv(response)
    assert len(rows) == store.summary("PS1")["without_client"] > 0
    assert {row["Site"] for row in rows} == {"PS1"}
    assert len(read_csv(client.get("/export/devices.csv?client=0"))) == summary["without_client"]
    assert client.get("/export/devices.csv?client=yes").status_code == 400


# -- duplicate records ------------------------------------------------------------------------


def _flagged_duplicates(store):
    frame = store.estate.devices
    return frame[frame["duplicate_of"] >= 0]


def test_device_page_of_a_duplicate_links_its_keeper(sample_store, sample_settings):
    flagged = _flagged_duplicates(sample_store)
    assert len(flagged) >= 2  # the bundled sample has some
    frame = sample_store.estate.devices
    for _index, record in flagged.iterrows():
        site, rid, keeper = (
            str(record["site"]),
            int(record["ResourceID"]),
            int(record["duplicate_of"]),
        )
        page = device.layout(sample_store, sample_settings, f"/device/{rid}", {"site": [site]})
        link = by_id(page, "device-keeper")
        keeper_row = frame[(frame["site"] == site) & (frame["ResourceID"] == keeper)].iloc[0]
        assert link.href == f"/device/{keeper}?site={site}"
        assert words(link) == f"{keeper_row['Name']} (ResourceID {keeper})"
        assert str(keeper_row["Name"]).lower() == str(record["Name"]).lower()
        rules = by_id(page, "device-attention")
        assert RULES_BY_ID["duplicate-record"].title in words(rules)
        # the keeper's page lists this record among its duplicates
        kept = device.layout(sample_store, sample_settings, f"/device/{keeper}", {"site": [site]})
        listed = [
            c.href for c in walk(by_id(kept, "device-duplicate-list")) if getattr(c, "href", None)
        ]
        assert f"/device/{rid}?site={site}" in listed
        assert not [c for c in walk(kept) if getattr(c, "id", None) == "device-keeper"]


def test_a_unique_record_has_no_duplicates_card(factory_store, factory_settings):
    rid = int(factory_store.estate.devices["ResourceID"].iat[0])
    site = str(factory_store.estate.devices["site"].iat[0])
    page = device.layout(factory_store, factory_settings, f"/device/{rid}", {"site": [site]})
    assert not [c for c in walk(page) if getattr(c, "id", None) == "device-duplicates"]

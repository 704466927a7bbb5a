"""The device list's query: validation of URL filters, matching, sorting, paging, export."""

import numpy as np
import pandas as pd

from dashboard.data.estate import Estate
from dashboard.model.device_query import (
    export_chunks,
    filter_mask,
    page_rows,
    parse_filter,
    rows_for,
    sort_key,
)
from tests.factories import classified

NOT_COMANAGED = {"MDMEnrolled": "0", "ComgmtPolicyPresent": "0", "MDMWorkloads": ""}


def estate_of(devices, memberships=()):
    frame = classified(devices)
    members = pd.DataFrame(list(memberships), columns=["row", "CollectionID"])
    members["site"], members["ResourceID"], members["CollectionName"] = "PS1", 0, "x"
    return Estate(devices=frame, memberships=members, sources=[], data_as_of="now")


ESTATE = estate_of(
    [
        {"Name": "ALPHA"},  # co-managed
        {
            "Name": "bravo",
            "MDMEnrolled": "0",
            "EnrollmentFailed": "1",
            "EnrollmentStatusCode": "-2145910742",
        },
        {"Name": "CHARLIE", "MDMEnrolled": "0", "PendingLogon": "1"},
        {"Name": "delta", **NOT_COMANAGED, "ProductType": "3"},
        {
            "Name": "<img src=x onerror=alert(1)>",
            "MDMEnrolled": "0",
            "EnrollmentFailed": "1",
            "AADJoined": "1",
            "HybridAADJoined": "0",
        },
    ],
    memberships=[(0, "CAS00101"), (2, "CAS00101")],
)


def matched(query, collections=("CAS00101",)):
    flt = parse_filter(
        query, ["PS1"], list(collections), ESTATE.devices["os_release"].cat.categories.tolist()
    )
    return ESTATE.devices.loc[filter_mask(ESTATE, ESTATE.devices, flt), "Name"].tolist(), flt


def test_filters_match_the_overview_numbers():
    assert matched({"enrollment_status": ["failure_hybrid"]})[0] == ["bravo"]
    assert matched({"enrollment_status": ["failure_hybrid", "failure_aad"]})[0] == [
        "bravo",
        "<img src=x onerror=alert(1)>",
    ]
    assert matched({"error": ["0x8018002a"]})[0] == ["bravo"]
    assert matched({"reason": ["server"]})[0] == ["delta"]
    assert matched({"funnel": ["initiated"]})[0] == [
        "ALPHA",
        "bravo",
        "CHARLIE",
        "<img src=x onerror=alert(1)>",
    ]
    assert matched({"funnel": ["enrolled"]})[0] == ["ALPHA"]
    assert matched({"os_group": ["Server"]})[0] == ["delta"]
    assert matched({"workload": ["client_apps"], "authority": ["configmgr"]})[0] == ["ALPHA"]
    assert matched({"attention": ["any"]})[0] == [
        "bravo",
        "CHARLIE",
        "<img src=x onerror=alert(1)>",
    ]
    assert matched({"attention": ["pending-sign-in"]})[0] == ["CHARLIE"]
    assert matched({"severity": ["high"]})[0] == ["bravo", "<img src=x onerror=alert(1)>"]
    assert matched({"comanaged": ["0"], "site": ["PS1"]})[0] == [
        "bravo",
        "CHARLIE",
        "delta",
        "<img src=x onerror=alert(1)>",
    ]
    assert matched({"collection": ["CAS00101"]})[0] == ["ALPHA", "CHARLIE"]
    assert matched({"q": ["AR"]})[0] == ["CHARLIE"]  # case-insensitive substring
    assert matched({"q": ["<img"]})[0] == ["<img src=x onerror=alert(1)>"]  # literal text
    assert matched({"q": [".*"]})[0] == []  # never a regular expression
    assert matched({"readiness": ["workstation"]})[0] == ["delta"]


def test_bad_parameters_are_rejected_not_used():
    names, flt = matched(
        {
            "collection": ["' OR 1=1 --"],
            "error": ["DROP TABLE"],
            "reason": ["nonsense"],
            "colour": ["red"],
            "authority": ["intune"],
        }
    )
    assert len(names) == 5  # nothing valid left: every device
    assert flt.values == {}
    assert len(flt.rejected) == 5


def test_sorting_and_paging():
    order = sort_key(ESTATE.devices, "name")
    backwards = sort_key(ESTATE.devices, "name", descending=True)
    everything = np.ones(len(ESTATE.devices), dtype=bool)
    names = ESTATE.devices["Name"].to_numpy()
    assert list(names[page_rows(order, everything, 0, 2)]) == [
        "<img src=x onerror=alert(1)>",
        "ALPHA",
    ]
    assert list(names[page_rows(backwards, everything, 0, 2)]) == ["delta", "CHARLIE"]
    assert list(names[page_rows(order, everything, 4, 100)]) == ["delta"]
    # most severe first, ties by name ascending
    severity = sort_key(ESTATE.devices, "severity", descending=True)
    top = page_rows(severity, everything, 0, 3)
    assert list(names[top]) == ["<img src=x onerror=alert(1)>", "bravo", "CHARLIE"]
    # the filter applies before the page is cut
    only_server = ESTATE.devices["os_group"].eq("Server").to_numpy()
    assert list(names[page_rows(order, only_server, 0, 100)]) == ["delta"]


def test_rows_are_plain_text_with_reason_and_error():
    rows = rows_for(ESTATE.devices, np.array([1, 4]))
    assert rows[0]["error_code"] == "0x8018002A"
    assert rows[0]["error"].startswith("The user cancelled")
    assert rows[0]["attention"] == "enrollment-failed"
    assert rows[1]["name"] == "<img src=x onerror=alert(1)>"
    assert rows[1]["state"] == "Failure, Microsoft Entra joined"
    assert rows[1]["error_code"] == "0x00000000"


def test_export_chunks_cover_every_row_with_fixes():
    positions = np.arange(len(ESTATE.devices))
    frames = [table.to_pandas() for table in export_chunks(ESTATE.devices, positions, chunk=2)]
    assert [len(f) for f in frames] == [2, 2, 1]
    export = pd.concat(frames)
    assert list(export["Name"]) == list(ESTATE.devices["Name"])
    fixes = export.set_index("Name")["Fixes"]
    assert fixes["CHARLIE"].startswith("Pending user sign in: Have the primary user sign in")
    rules = export.set_index("Name")[["Attention rules", "Attention rule ids"]]
    assert tuple(rules.loc["CHARLIE"]) == ("Pending user sign in", "pending-sign-in")
    assert export.set_index("Name")["Error fix"]["bravo"].startswith("Let users complete MFA")

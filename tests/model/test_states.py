"""The state model of docs/definitions.md §4, rule by rule, with its edges."""

import pytest

from dashboard.model.states import release_label
from dashboard.model.summary import summarize
from tests.factories import classified, one

W11 = {"Build": "10.0.22631"}
NOT_COMANAGED = {"MDMEnrolled": "0", "ComgmtPolicyPresent": "0", "MDMWorkloads": ""}


@pytest.mark.parametrize(
    "device, group",
    [
        ({"Build": "10.0.19045"}, "Windows 10 1709 and later"),
        ({"Build": "22631"}, "Windows 10 1709 and later"),  # Windows 11 counts here
        ({"Build": "16299"}, "Windows 10 1709 and later"),  # the boundary is inclusive
        ({"Build": "15063"}, "Windows 10 lower than 1709"),
        (
            {"OperatingSystem": "Microsoft Windows NT Workstation 6.1", "Build": "6.1.7601"},
            "Windows 7 & 8.x",
        ),
        (
            {"OperatingSystem": "Microsoft Windows NT Workstation 6.3", "Build": "9600"},
            "Windows 7 & 8.x",
        ),
        ({"OperatingSystem": "Microsoft Windows NT Server 10.0", "ProductType": "3"}, "Server"),
        ({"ProductType": "2"}, "Server"),  # a domain controller, whatever its name says
        (
            {"OperatingSystem": "Microsoft Windows NT Server 10.0", "ProductType": "1"},
            "Windows 10 1709 and later",
        ),  # ProductType decides when it is 1, 2 or 3
        ({"OperatingSystem": "Microsoft Windows NT Server 10.0", "ProductType": ""}, "Server"),
        ({"OperatingSystem": "Microsoft Windows NT Server 10.0", "ProductType": "7"}, "Server"),
        ({"Build": "10.0"}, "Other"),  # NT 10.0 workstation with no build
        ({"Build": ""}, "Other"),
        (
            {"OperatingSystem": "", "Build": "10.0.19045", "ProductType": "1"},
            "Windows 10 1709 and later",
        ),  # NT version from a dotted build
        (
            {
                "OperatingSystem": "Microsoft Windows NT Workstation 10.0 (Tablet Edition)",
                "Build": "19045",
            },
            "Windows 10 1709 and later",
        ),
        ({"OperatingSystem": "Linux", "ProductType": ""}, "Other"),
    ],
)
def test_os_group(device, group):
    assert one(device)["os_group"] == group


@pytest.mark.parametrize(
    "build, label",
    [
        (19045, "Windows 10 22H2"),
        (22631, "Windows 11 23H2"),
        (26100, "Windows 11 24H2"),
        (26200, "Windows 11 25H2"),
        (22000, "Windows 11 21H2"),
        (19044, "Windows 10 21H2"),
        (14393, "Windows 10 1607"),
        (19046, "Windows 10 build 19046"),
        (22635, "Windows 11 build 22635"),
    ],
)
def test_release_labels(build, label):
    assert release_label(build) == label


def test_release_of_non_windows10_devices_is_their_group():
    frame = classified(
        [
            {"Build": "10.0.19045.4651"},
            {"OperatingSystem": "Microsoft Windows NT Workstation 6.1", "Build": "7601"},
            {"ProductType": "3"},
            {"Build": "10.0"},
            {"Build": "15063"},
        ]
    )
    assert list(frame["os_release"].astype(str)) == [
        "Windows 10 22H2",
        "Windows 7 & 8.x",
        "Server",
        "Other",
        "Windows 10 1703",
    ]


def test_comanaged_needs_both_flags():
    assert one({})["comanaged"]
    assert not one({"ComgmtPolicyPresent": "0"})["comanaged"]
    assert not one({"MDMEnrolled": ""})["comanaged"]  # unknown never counts as set
    # MDMProvisioned plays no part
    assert one({"MDMProvisioned": "0"})["comanaged"]


def test_flags_read_any_spelling():
    device = one(
        {
            "MDMEnrolled": "True",
            "ComgmtPolicyPresent": "yes",
            "HybridAADJoined": "1.0",
            "ClientInstalled": "TRUE",
        }
    )
    assert device["comanaged"] and device["eligible"]


def test_eligibility():
    assert one({**NOT_COMANAGED})["eligible"]  # client, 1709+, hybrid joined
    assert not one({**NOT_COMANAGED, "ClientInstalled": "0"})["eligible"]
    assert not one({**NOT_COMANAGED, "HybridAADJoined": "0"})["eligible"]
    assert one({**NOT_COMANAGED, "HybridAADJoined": "0", "AADJoined": "1"})["eligible"]
    assert not one({**NOT_COMANAGED, "Build": "15063"})["eligible"]
    # co-managed is always eligible, even on an odd record
    assert one({"ClientInstalled": "0", "HybridAADJoined": "0"})["eligible"]


def test_join_type():
    assert one({"AADJoined": "1", "HybridAADJoined": "0"})["join_type"] == "aad"
    assert one({"AADJoined": "1", "HybridAADJoined": "1"})["join_type"] == "hybrid"
    assert one({"AADJoined": "0", "HybridAADJoined": "0"})["join_type"] == "hybrid"


def test_funnel_stages_and_stale_flags():
    scheduled = one({**NOT_COMANAGED, "ComgmtPolicyPresent": "1", "EnrollmentScheduled": "1"})
    assert (scheduled["eligible"], scheduled["scheduled"], scheduled["initiated"]) == (
        True,
        True,
        False,
    )
    failed = one({**NOT_COMANAGED, "ComgmtPolicyPresent": "1", "EnrollmentFailed": "1"})
    assert failed["scheduled"] and failed["initiated"] and not failed["comanaged"]
    # Stale flags without policy do not move a device along the funnel.
    stale = one({**NOT_COMANAGED, "EnrollmentScheduled": "1", "EnrollmentFailed": "1"})
    assert stale["eligible"] and not stale["scheduled"] and not stale["initiated"]
    assert str(stale["funnel"]) == "eligible"
    assert str(one({})["funnel"]) == "enrolled"


@pytest.mark.parametrize(
    "device, status",
    [
        ({}, "success_hybrid"),
        ({"AADJoined": "1", "HybridAADJoined": "0"}, "success_aad"),
        ({"MDMEnrolled": "0", "EnrollmentFailed": "1"}, "failure_hybrid"),
        (
            {"MDMEnrolled": "0", "EnrollmentFailed": "1", "AADJoined": "1", "HybridAADJoined": "0"},
            "failure_aad",
        ),
        ({"MDMEnrolled": "0", "PendingLogon": "1"}, "pending_user_sign_in"),
        ({"MDMEnrolled": "0", "EnrollmentFailed": "1", "PendingLogon": "1"}, "failure_hybrid"),
        ({"MDMEnrolled": "0"}, "enrolling_hybrid"),
        ({"MDMEnrolled": "0", "AADJoined": "1", "HybridAADJoined": "0"}, "enrolling_aad"),
        # MDMEnrolled without policy: targeted, not co-managed, enrolling
        ({"ComgmtPolicyPresent": "0"}, "enrolling_hybrid"),
    ],
)
def test_enrollment_status(device, status):
    assert one(device)["enrollment_status"] == status


def test_not_targeted_has_no_status():
    device = one(NOT_COMANAGED)
    assert not device["targeted"]
    assert str(device["enrollment_status"]) == "nan"


@pytest.mark.parametrize(
    "device, reason",
    [
        ({**NOT_COMANAGED, "ProductType": "3"}, "server"),
        ({**NOT_COMANAGED, "Build": "14393"}, "os-too-old"),
        (
            {**NOT_COMANAGED, "OperatingSystem": "Microsoft Windows NT Workstation 6.1"},
            "os-too-old",
        ),
        ({**NOT_COMANAGED, "Build": ""}, "os-unknown"),
        ({**NOT_COMANAGED, "ClientInstalled": ""}, "no-client"),
        ({**NOT_COMANAGED, "HybridAADJoined": "0"}, "not-joined"),
        (NOT_COMANAGED, "no-policy"),
        ({"MDMEnrolled": "0", "EnrollmentFailed": "1", "PendingLogon": "1"}, "failed"),
        ({"MDMEnrolled": "0", "PendingLogon": "1", "EnrollmentScheduled": "1"}, "pending-sign-in"),
        ({"MDMEnrolled": "0", "EnrollmentScheduled": "1"}, "scheduled"),
        ({"MDMEnrolled": "0"}, "enrolling"),
    ],
)
def test_primary_reason(device, reason):
    assert one(device)["reason"] == reason


def test_comanaged_device_has_no_reason():
    assert str(one({})["reason"]) == "nan"


COMPLIANCE = "compliance_policies"


@pytest.mark.parametrize(
    "bits, stage, in_pilot, authority",
    [
        ("", "intune", False, "configmgr"),  # NULL bitmask: nothing moved
        ("8193", "intune", False, "configmgr"),  # 0x2001: configured, no workload
        ("8195", "intune", False, "intune"),  # 0x2003: compliance bit
        ("3", "pilot", True, "pilot_intune"),
        ("3", "pilot", False, "intune"),  # bit set outside the pilot: the bit is the truth
        ("3", "configmgr", False, "intune"),
        ("3.0", "intune", False, "intune"),
    ],
)
def test_workload_authority(bits, stage, in_pilot, authority):
    device = one(
        {"MDMWorkloads": bits},
        stages={COMPLIANCE: stage},
        pilots={COMPLIANCE: [0] if in_pilot else []},
    )
    assert device[f"wl_{COMPLIANCE}"] == authority


def test_endpoint_protection_high_bit_form():
    device = one({"MDMWorkloads": "4129"})  # 4128 = 32 + 4096: EP moved, high bit ignored
    assert device["wl_endpoint_protection"] == "intune"
    assert device["wl_resource_access_policies"] == "configmgr"


def test_non_comanaged_devices_have_no_authority():
    assert str(one({**NOT_COMANAGED, "MDMWorkloads": "255"})["wl_client_apps"]) == "nan"


def test_error_codes_are_normalised_and_grouped():
    frame = classified(
        [
            {"MDMEnrolled": "0", "EnrollmentFailed": "1", "EnrollmentStatusCode": "-2145910742"},
            {"MDMEnrolled": "0", "EnrollmentFailed": "1", "EnrollmentStatusCode": "0x8018002a"},
            {"MDMEnrolled": "0", "EnrollmentFailed": "1", "EnrollmentStatusCode": "2149056554"},
            {"MDMEnrolled": "0", "EnrollmentFailed": "1", "EnrollmentStatusCode": ""},
            {
                "MDMEnrolled": "0",
                "EnrollmentFailed": "1",
                "EnrollmentStatusCode": "0x87d00000",
                "EnrollmentErrorDetail": "Something odd",
            },
            {"MDMEnrolled": "0", "EnrollmentFailed": "1", "EnrollmentStatusCode": "0x87D00001"},
            {"MDMEnrolled": "0", "EnrollmentFailed": "1", "EnrollmentStatusCode": "0x80180030"},
            # a co-managed device with a stale failure code is not an error
            {"EnrollmentFailed": "1", "EnrollmentStatusCode": "0x80180002"},
        ]
    )
    summary = summarize(frame, [], "2026-11-23T07:00:00+00:00")
    errors = {e["code"]: e for e in summary["enrollment_errors"]}
    assert errors["0x8018002A"]["count"] == 3
    assert errors["0x00000000"]["description"] == "No error code reported"
    assert errors["0x87D00000"]["description"] == "Something odd"
    assert errors["0x87D00001"]["description"] == "Unknown error 0x87D00001"
    assert errors["0x80180030"]["description"] == errors["0x8018002A"]["description"]
    assert "0x80180002" not in errors
    assert [e["count"] for e in summary["enrollment_errors"]] == [3, 1, 1, 1, 1]
    # counts descending, then code
    assert [e["code"] for e in summary["enrollment_errors"]][1:] == sorted(
        e["code"] for e in summary["enrollment_errors"][1:]
    )
    failures = (
        summary["enrollment_status"]["failure_hybrid"] + summary["enrollment_status"]["failure_aad"]
    )
    assert sum(e["count"] for e in summary["enrollment_errors"]) == failures


def test_summary_keys_present_and_sums_hold():
    frame = classified(
        [
            {},
            NOT_COMANAGED,
            {"ProductType": "3", **NOT_COMANAGED},
            {"MDMEnrolled": "0", "PendingLogon": "1"},
        ]
    )
    summary = summarize(
        frame,
        [{"site": "PS1", "kind": "csv", "rows": 4, "dropped": 0}],
        "2026-11-23T07:00:00+00:00",
    )
    assert set(summary) >= {
        "devices",
        "comanaged",
        "os_groups",
        "os_releases",
        "funnel",
        "enrollment_status",
        "workloads",
        "enrollment_errors",
        "not_comanaged_reasons",
        "data_as_of",
        "sources",
        "attention",
        "attention_devices",
        "without_client",
    }
    assert summary["devices"] == 4 and summary["comanaged"] == 1
    assert summary["without_client"] == 0
    assert sum(summary["os_groups"].values()) == 4
    assert sum(summary["os_releases"].values()) == 4
    assert sum(summary["not_comanaged_reasons"].values()) == 3
    targeted = int(frame["targeted"].sum())
    assert sum(summary["enrollment_status"].values()) == targeted
    for counts in summary["workloads"].values():
        assert sum(counts.values()) == summary["comanaged"]
    assert set(summary["workloads"]) == {
        "compliance_policies",
        "resource_access_policies",
        "device_configuration",
        "windows_update_policies",
        "endpoint_protection",
        "client_apps",
        "office_click_to_run_apps",
    }


def test_os_figures_count_client_devices_only():
    """The console's OS tile counts client devices; the others are ``without_client`` and
    count everywhere else."""
    frame = classified(
        [
            {"Build": "10.0.26200"},  # client, Windows 11 25H2
            {"Build": "10.0.19045", "ClientInstalled": "0", **NOT_COMANAGED},
            {"Build": "10.0.19045", "ClientInstalled": "", **NOT_COMANAGED},  # unknown: not counted
            {"Build": "10.0.15063", "ClientInstalled": "NULL", **NOT_COMANAGED},
            {
                "OperatingSystem": "Microsoft Windows NT Server 10.0",
                "ProductType": "3",
                "ClientInstalled": "True",
                **NOT_COMANAGED,
            },
        ]
    )
    summary = summarize(frame, [], "x")
    assert summary["devices"] == 5 and summary["without_client"] == 3
    assert summary["os_groups"] == {
        "Windows 10 1709 and later": 1,
        "Windows 10 lower than 1709": 0,
        "Windows 7 & 8.x": 0,
        "Server": 1,
        "Other": 0,
    }
    assert summary["os_releases"] == {"Server": 1, "Windows 11 25H2": 1}
    # everything else counts every record
    assert sum(summary["not_comanaged_reasons"].values()) == 4
    assert summary["not_comanaged_reasons"]["no-client"] == 2
    assert summary["not_comanaged_reasons"]["os-too-old"] == 1
    # a filter keeps its share of both
    mask = frame["Build"].astype("str").str.endswith("19045").to_numpy()
    part = summarize(frame, [], "x", mask)
    assert part["devices"] == 2 and part["without_client"] == 2
    assert sum(part["os_groups"].values()) == 0 and part["os_releases"] == {}

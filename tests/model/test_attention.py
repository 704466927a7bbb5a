"""Attention rules: each predicate, its threshold and its boundaries; readiness steps."""

import pandas as pd
import pytest

from dashboard.model.attention import RULES, rule_ids
from dashboard.model.summary import summarize
from tests.factories import AS_OF, classified, one

NOT_COMANAGED = {"MDMEnrolled": "0", "ComgmtPolicyPresent": "0", "MDMWorkloads": ""}


def rules_of(device: dict, **kwargs) -> list[str]:
    return rule_ids(int(one(device, **kwargs)["attention"]))


def days_before_as_of(days: float) -> str:
    return (AS_OF - pd.Timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S.000")


def test_healthy_device_needs_nothing():
    device = one({})
    assert rules_of({}) == []
    assert pd.isna(device["severity"])


def test_enrollment_failed_is_high():
    device = one({"MDMEnrolled": "0", "EnrollmentFailed": "1"})
    assert rule_ids(int(device["attention"])) == ["enrollment-failed"]
    assert device["severity"] == "high"


@pytest.mark.parametrize("days, flagged", [(13.9, False), (14, False), (14.01, True), (40, True)])
def test_client_inactive_threshold_boundary(days, flagged):
    found = "client-inactive" in rules_of({"LastPolicyRequest": days_before_as_of(days)})
    assert found is flagged


def test_client_inactive_threshold_comes_from_config():
    device = {"LastPolicyRequest": days_before_as_of(8)}
    assert "client-inactive" not in rules_of(device)
    assert "client-inactive" in rules_of(device, inactive_days=7)


def test_client_inactive_flag_and_scope():
    assert "client-inactive" in rules_of({"ClientActive": "0"})
    assert "client-inactive" not in rules_of({"ClientActive": ""})  # unknown is not inactive
    # neither co-managed nor eligible (a server): out of scope
    assert "client-inactive" not in rules_of(
        {**NOT_COMANAGED, "ProductType": "3", "ClientActive": "0"}
    )
    # missing last policy request alone is not flagged
    assert "client-inactive" not in rules_of({"LastPolicyRequest": ""})


def test_pending_sign_in_and_severity_is_highest_match():
    device = one({"MDMEnrolled": "0", "PendingLogon": "1", "ClientActive": "0"})
    assert rule_ids(int(device["attention"])) == ["client-inactive", "pending-sign-in"]
    assert device["severity"] == "high"


def test_not_joined():
    assert "not-joined" in rules_of({**NOT_COMANAGED, "HybridAADJoined": "0"})
    assert "not-joined" not in rules_of(
        {**NOT_COMANAGED, "HybridAADJoined": "0", "ClientInstalled": "0"}
    )
    assert "not-joined" not in rules_of({**NOT_COMANAGED, "HybridAADJoined": "0", "Build": "15063"})


def test_no_policy_needs_eligible_and_active_client():
    assert rules_of(NOT_COMANAGED) == ["no-policy"]
    assert "no-policy" not in rules_of({**NOT_COMANAGED, "ClientActive": "0"})
    assert "no-policy" not in rules_of({**NOT_COMANAGED, "HybridAADJoined": "0"})


@pytest.mark.parametrize(
    "stage, bits, in_pilot, lag",
    [
        ("pilot", "8193", True, True),
        ("intune", "8193", True, True),
        ("pilot", "8195", True, False),
        ("pilot", "8193", False, False),
        ("configmgr", "8193", True, False),
    ],
)
def test_workload_lag(stage, bits, in_pilot, lag):
    found = "workload-lag" in rules_of(
        {"MDMWorkloads": bits},
        stages={"compliance_policies": stage},
        pilots={"compliance_policies": [0] if in_pilot else []},
    )
    assert found is lag


def test_no_client_and_os_upgrade():
    assert rules_of({**NOT_COMANAGED, "ClientInstalled": "0"}) == ["no-client"]
    assert "no-client" not in rules_of(
        {**NOT_COMANAGED, "ClientInstalled": "0", "ProductType": "3"}
    )
    assert rules_of({**NOT_COMANAGED, "Build": "15063"}) == ["os-upgrade-needed"]
    device = one(
        {
            **NOT_COMANAGED,
            "OperatingSystem": "Microsoft Windows NT Workstation 6.1",
            "Build": "7601",
        }
    )
    assert device["severity"] == "low"


def test_every_rule_is_declared_once_with_fix():
    assert len({rule.id for rule in RULES}) == len(RULES) >= 8
    assert all(
        rule.fix and rule.title and rule.severity in ("high", "medium", "low") for rule in RULES
    )


def test_readiness_steps_count_among_those_that_passed_before():
    frame = classified(
        [
            {},  # passes all
            {"ProductType": "3"},  # fails workstation
            {"Build": "15063"},  # fails OS version
            {"ClientInstalled": "0"},
            {"ClientActive": ""},  # unknown does not pass
            {"HybridAADJoined": "0"},
            {"ComgmtPolicyPresent": "0"},
            {"ProductType": "3", "ClientInstalled": "0"},  # counted once, at its first failure
        ]
    )
    steps = summarize(frame, [], "2026-11-23T07:00:00+00:00")["readiness"]
    assert [s["failed"] for s in steps] == [2, 1, 1, 1, 1, 1]
    assert [s["checked"] for s in steps] == [8, 6, 5, 4, 3, 2]
    assert steps[-1]["passed"] == 1


# -- duplicate records -------------------------------------------------------------------------


def duplicates(devices: list[dict]) -> dict[int, int]:
    """ResourceID -> the keeper's ResourceID, for the records the rule flags."""
    frame = classified(devices)
    flagged = frame[[("duplicate-record" in rule_ids(int(m))) for m in frame["attention"]]]
    assert (flagged["duplicate_of"] > 0).all()
    assert (frame.loc[~frame.index.isin(flagged.index), "duplicate_of"] == -1).all()
    return dict(
        zip(flagged["ResourceID"].astype(int), flagged["duplicate_of"].astype(int), strict=True)
    )


def test_duplicate_names_equal_ignoring_case_are_one_machine():
    # Both with the client, same date: the highest ResourceID is kept.
    assert duplicates([{"Name": "LON-LT-1"}, {"Name": "lon-lt-1"}]) == {1: 2}
    assert duplicates([{"Name": "LON-LT-1"}, {"Name": "LON-LT-2"}]) == {}
    assert duplicates([{"Name": "Ärzte-PC"}, {"Name": "ÄRZTE-pc"}]) == {1: 2}  # not ASCII


def test_duplicate_keeper_has_the_client_first():
    # The discovery-only record (no client, or unknown) goes, whatever its date or ID.
    devices = [
        {"Name": "PC-A", "LastPolicyRequest": days_before_as_of(30)},
        {"Name": "pc-a", "ClientInstalled": "", "LastPolicyRequest": days_before_as_of(0)},
        {"Name": "PC-a", "ClientInstalled": "0", "MDMEnrolled": "0"},
    ]
    assert duplicates(devices) == {2: 1, 3: 1}


def test_duplicate_keeper_then_has_the_newest_policy_request():
    # A re-imaged machine: two client records, the old one has not asked for policy since.
    devices = [
        {"Name": "NYC-WS-7", "LastPolicyRequest": days_before_as_of(1)},
        {"Name": "NYC-WS-7", "LastPolicyRequest": days_before_as_of(60)},
    ]
    assert duplicates(devices) == {2: 1}
    # A missing LastPolicyRequest is the oldest of all.
    devices = [
        {"Name": "NYC-WS-8", "LastPolicyRequest": ""},
        {"Name": "nyc-ws-8", "LastPolicyRequest": days_before_as_of(200)},
    ]
    assert duplicates(devices) == {1: 2}
    # Both missing: the highest ResourceID.
    devices = [
        {"Name": "NYC-WS-9", "LastPolicyRequest": ""},
        {"Name": "NYC-WS-9", "LastPolicyRequest": ""},
    ]
    assert duplicates(devices) == {1: 2}


def test_duplicates_only_within_one_site():
    devices = [
        {"Name": "PC-X", "SiteCode": "PS1"},
        {"Name": "pc-x", "SiteCode": "PS2"},
        {"Name": "PC-X", "SiteCode": "PS2", "LastPolicyRequest": days_before_as_of(9)},
        {"Name": "", "SiteCode": "PS1"},
        {"Name": "", "SiteCode": "PS1"},
    ]
    # PS1's PC-X is alone in its site; records without a name are never duplicates.
    assert duplicates(devices) == {3: 2}


def test_duplicate_rule_is_low_counted_and_changes_no_other_count():
    devices = [{"Name": "PC-A"}, {"Name": "pc-a", "ClientInstalled": ""}, {"Name": "PC-B"}]
    frame = classified(devices)
    device = frame.iloc[1]
    assert "duplicate-record" in rule_ids(int(device["attention"]))
    summary = summarize(frame, [], "x")
    assert summary["attention"]["duplicate-record"] == 1
    assert summary["devices"] == 3 and summary["comanaged"] == 3
    rule = next(r for r in RULES if r.id == "duplicate-record")
    assert rule.severity == "low" and "delete" in rule.fix.lower()
    # alone, it makes a device low severity
    alone = classified(
        [
            {"Name": "PC-C", "LastPolicyRequest": days_before_as_of(1)},
            {"Name": "PC-C", "LastPolicyRequest": days_before_as_of(2)},
        ]
    )
    assert rule_ids(int(alone.iloc[1]["attention"])) == ["duplicate-record"]
    assert alone.iloc[1]["severity"] == "low" and pd.isna(alone.iloc[0]["severity"])

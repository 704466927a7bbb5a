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


@pytest.mark.parametrize("days, flagged", [(13.9, False), (14, False), (14.01, True),
                                           (40, True)])
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
    assert "client-inactive" not in rules_of({**NOT_COMANAGED, "ProductType": "3",
                                              "ClientActive": "0"})
    # missing last policy request alone is not flagged
    assert "client-inactive" not in rules_of({"LastPolicyRequest": ""})


def test_pending_sign_in_and_severity_is_highest_match():
    device = one({"MDMEnrolled": "0", "PendingLogon": "1", "ClientActive": "0"})
    assert rule_ids(int(device["attention"])) == ["client-inactive", "pending-sign-in"]
    assert device["severity"] == "high"


def test_not_joined():
    assert "not-joined" in rules_of({**NOT_COMANAGED, "HybridAADJoined": "0"})
    assert "not-joined" not in rules_of({**NOT_COMANAGED, "HybridAADJoined": "0",
                                         "ClientInstalled": "0"})
    assert "not-joined" not in rules_of({**NOT_COMANAGED, "HybridAADJoined": "0",
                                         "Build": "15063"})


def test_no_policy_needs_eligible_and_active_client():
    assert rules_of(NOT_COMANAGED) == ["no-policy"]
    assert "no-policy" not in rules_of({**NOT_COMANAGED, "ClientActive": "0"})
    assert "no-policy" not in rules_of({**NOT_COMANAGED, "HybridAADJoined": "0"})


@pytest.mark.parametrize("stage, bits, in_pilot, lag", [
    ("pilot", "8193", True, True), ("intune", "8193", True, True),
    ("pilot", "8195", True, False), ("pilot", "8193", False, False),
    ("configmgr", "8193", True, False),
])
def test_workload_lag(stage, bits, in_pilot, lag):
    found = "workload-lag" in rules_of({"MDMWorkloads": bits},
                                       stages={"compliance_policies": stage},
                                       pilots={"compliance_policies": [0] if in_pilot else []})
    assert found is lag


def test_no_client_and_os_upgrade():
    assert rules_of({**NOT_COMANAGED, "ClientInstalled": "0"}) == ["no-client"]
    assert "no-client" not in rules_of({**NOT_COMANAGED, "ClientInstalled": "0",
                                        "ProductType": "3"})
    assert rules_of({**NOT_COMANAGED, "Build": "15063"}) == ["os-upgrade-needed"]
    device = one({**NOT_COMANAGED, "OperatingSystem": "Microsoft Windows NT Workstation 6.1",
                  "Build": "7601"})
    assert device["severity"] == "low"


def test_every_rule_is_declared_once_with_fix():
    assert len({rule.id for rule in RULES}) == len(RULES) >= 8
    assert all(rule.fix and rule.title and rule.severity in ("high", "medium", "low")
               for rule in RULES)


def test_readiness_steps_count_among_those_that_passed_before():
    frame = classified([
        {},  # passes all
        {"ProductType": "3"},  # fails workstation
        {"Build": "15063"},  # fails OS version
        {"ClientInstalled": "0"},
        {"ClientActive": ""},  # unknown does not pass
        {"HybridAADJoined": "0"},
        {"ComgmtPolicyPresent": "0"},
        {"ProductType": "3", "ClientInstalled": "0"},  # counted once, at its first failure
    ])
    steps = summarize(frame, [], "2026-11-23T07:00:00+00:00")["readiness"]
    assert [s["failed"] for s in steps] == [2, 1, 1, 1, 1, 1]
    assert [s["checked"] for s in steps] == [8, 6, 5, 4, 3, 2]
    assert steps[-1]["passed"] == 1

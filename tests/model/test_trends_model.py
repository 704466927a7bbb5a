"""The pure history functions (model.trends) and the stuck rule's boundary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.model.attention import RULE_BITS, RULES, Thresholds, evaluate
from dashboard.model.summary import summarize
from dashboard.model.trends import (
    CHANGE_KINDS,
    carry_since,
    metrics_from_summary,
    state_keys,
    summary_from_metrics,
    transitions,
    trend_series,
)
from tests.factories import AS_OF, classified

ENROLLING = {"MDMEnrolled": "0", "EnrollmentScheduled": "0"}
SCHEDULED = {"MDMEnrolled": "0", "EnrollmentScheduled": "1"}
PENDING = {"MDMEnrolled": "0", "PendingLogon": "1"}
FAILED = {"MDMEnrolled": "0", "EnrollmentFailed": "1", "EnrollmentStatusCode": "0x80180002"}


def stuck(devices: list[dict], days_in_state: list[int | None], stuck_days: int = 14):
    frame = classified(devices)
    frame["state_since"] = [
        pd.NaT if d is None else AS_OF.normalize() - pd.Timedelta(days=d) for d in days_in_state
    ]
    out = evaluate(frame, Thresholds(stuck_days=stuck_days), AS_OF)
    return ((out["attention"].to_numpy() & RULE_BITS["stuck"]) != 0).tolist()


def test_exactly_stuck_days_is_not_stuck_one_more_is():
    devices = [ENROLLING, ENROLLING, ENROLLING]
    assert stuck(devices, [13, 14, 15]) == [False, False, True]
    assert stuck(devices, [6, 7, 8], stuck_days=7) == [False, False, True]


def test_stuck_counts_whole_days_whatever_the_time_of_day():
    frame = classified([SCHEDULED, SCHEDULED])
    late = AS_OF.normalize() + pd.Timedelta(hours=23, minutes=59)
    frame["state_since"] = [
        AS_OF.normalize() - pd.Timedelta(days=14) + pd.Timedelta(hours=22),
        AS_OF.normalize() - pd.Timedelta(days=15),
    ]
    out = evaluate(frame, Thresholds(), late)
    assert ((out["attention"].to_numpy() & RULE_BITS["stuck"]) != 0).tolist() == [False, True]


def test_only_scheduled_enrolling_and_pending_devices_get_stuck():
    devices = [SCHEDULED, ENROLLING, PENDING, FAILED, {}]  # {}: co-managed
    assert stuck(devices, [30] * 5) == [True, True, True, False, False]
    assert stuck(devices, [None] * 5) == [False] * 5  # no history for them


def test_no_history_no_stuck_device():
    frame = classified([ENROLLING])  # no state_since column at all
    assert not (frame["attention"].to_numpy() & RULE_BITS["stuck"]).any()


def test_the_stuck_rule_is_medium_and_appears_in_the_summary():
    rule = next(r for r in RULES if r.id == "stuck")
    assert rule.severity == "medium"
    # Rules are appended: the bits stored in history keep their meaning.
    assert [r.id for r in RULES][8:10] == ["stuck", "duplicate-record"]
    frame = classified([ENROLLING, ENROLLING])
    frame["state_since"] = [AS_OF.normalize() - pd.Timedelta(days=20)] * 2
    summary = summarize(evaluate(frame, Thresholds(), AS_OF), [], "x")
    assert summary["attention"]["stuck"] == 2


def test_transitions():
    comanaged = np.array([True, True, False, False, True])
    failed = np.array([False, False, True, True, False])
    known = np.array([True, True, True, False, False])
    was_comanaged = np.array([True, False, True, True, True])  # ignored where unknown
    was_failed = np.array([False, True, False, True, False])
    out = transitions(comanaged, failed, known, was_comanaged, was_failed)
    assert set(out) == set(CHANGE_KINDS)
    assert out["newly_comanaged"].tolist() == [False, True, False, False, True]
    assert out["newly_failed"].tolist() == [False, False, True, True, False]
    assert out["fell_back"].tolist() == [False, False, True, False, False]


def test_carry_since_folds_in_progress_states():
    keys = state_keys(np.array([9, 10, 8, 7, 0]), (8, 9, 10))
    assert keys.tolist() == [8, 8, 8, 7, 0]
    previous_keys = state_keys(np.array([10, 9, 0, 7]), (8, 9, 10))
    index = np.array([0, 1, 2, 3, -1])
    since = carry_since(
        keys, 20261123, index, previous_keys, np.array([20261001, 20261102, 20260101, 0])
    )
    # same in-progress state: carried; was co-managed: today; unknown since: today; new: today
    assert since.tolist() == [20261001, 20261102, 20261123, 20261123, 20261123]


def test_metrics_round_trip_through_the_summary_shape():
    frame = classified([{}, ENROLLING, FAILED, PENDING, {"MDMWorkloads": "8195"}])
    summary = summarize(frame, [], "x")
    metrics = metrics_from_summary(summary)
    assert metrics["devices"] == 5 and metrics["comanaged"] == 2
    assert metrics["errors/0x80180002"] == 1
    assert all(value for key, value in metrics.items() if key not in ("devices", "comanaged"))
    back = summary_from_metrics(metrics)
    for key in (
        "devices",
        "comanaged",
        "os_groups",
        "without_client",
        "funnel",
        "enrollment_status",
        "workloads",
        "not_comanaged_reasons",
        "attention",
        "attention_devices",
    ):
        assert back[key] == summary[key], key
    assert back["enrollment_errors"] == {"0x80180002": 1}
    assert back["readiness"] == {row["step"]: row["failed"] for row in summary["readiness"]}
    assert summary_from_metrics({})["funnel"] == dict.fromkeys(summary["funnel"], 0)


def test_os_metrics_of_old_snapshots_are_not_read_as_client_counts():
    """OS groups count client devices now: a day stored before (all records in
    ``os_groups/``), or summed over sites of which some were stored before, has no OS
    figures rather than wrong ones."""
    frame = classified([{}, {"ClientInstalled": "0", **ENROLLING}, {"Build": "10.0.15063"}])
    summary = summarize(frame, [], "x")
    metrics = metrics_from_summary(summary)
    assert metrics["without_client"] == 1
    assert metrics["client_os_groups/Windows 10 1709 and later"] == 1
    assert not any(key.startswith("os_groups/") for key in metrics)
    back = summary_from_metrics(metrics)
    assert back["os_groups"] == summary["os_groups"] and back["without_client"] == 1
    old = {
        "devices": 3,
        "comanaged": 2,
        "os_groups/Windows 10 1709 and later": 2,
        "os_groups/Windows 10 lower than 1709": 1,
    }
    assert summary_from_metrics(old)["os_groups"] is None
    assert summary_from_metrics(old)["without_client"] is None
    assert summary_from_metrics(old)["devices"] == 3  # the rest reads as before
    # one site recorded before, one after, summed on the same day
    mixed = {key: metrics.get(key, 0) + old.get(key, 0) for key in {*metrics, *old}}
    assert summary_from_metrics(mixed)["os_groups"] is None
    # no client at all on a new-style day: zeros, not unknown
    nobody = metrics_from_summary(summarize(classified([{"ClientInstalled": "0"}]), [], "x"))
    assert summary_from_metrics(nobody)["os_groups"] == dict.fromkeys(summary["os_groups"], 0)


def test_trend_series():
    frame = pd.DataFrame(
        {
            "devices": [10, 20],
            "comanaged": [5, 0],
            "workloads/compliance_policies/intune": [2, 0],
            "workloads/compliance_policies/pilot_intune": [1, 0],
            "enrollment_status/failure_hybrid": [3, 1],
            "enrollment_status/failure_aad": [1, 0],
            "funnel/eligible": [8, 9],
            "attention/stuck": [0, 4],
            "attention_devices": [6, 7],
        },
        index=pd.Index(["2026-11-16", "2026-11-23"], name="day"),
    )
    series = trend_series(frame)
    assert series["comanaged_share"].tolist() == [0.5, 0.0]
    assert series["intune_share_compliance_policies"].iloc[0] == pytest.approx(0.6)
    assert np.isnan(series["intune_share_compliance_policies"].iloc[1])  # none co-managed
    assert series["failures"].tolist() == [4, 1]
    assert series["funnel_scheduled"].tolist() == [0, 0]  # missing metric: zero
    assert series["attention_stuck"].tolist() == [0, 4]

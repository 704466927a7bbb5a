"""The Intune side through the pipeline: reconciled columns, attention rules, the summary's
``intune`` object, the text table and history; and no change at all without a source."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd
import pytest

from dashboard.data.estate import Estate
from dashboard.data.history import HistoryStore
from dashboard.model.attention import (
    INTUNE_RULE_IDS,
    RULES,
    Thresholds,
    evaluate,
    rule_ids,
)
from dashboard.model.intune import reconcile
from dashboard.model.summary import summarize
from dashboard.model.trends import summary_from_metrics, trend_series
from dashboard.settings import Settings
from dashboard.summary_table import format_table
from tests.factories import AS_OF, classified
from tests.model.test_intune import GUID, NOT_COMANAGED, OTHER, intune

THIRD = "5d1b7cb0-d3e8-4cf0-9432-bfe9b5341571"
BEFORE = [
    "enrollment-failed",
    "client-inactive",
    "pending-sign-in",
    "not-joined",
    "no-policy",
    "workload-lag",
    "no-client",
    "os-upgrade-needed",
    "stuck",
    "duplicate-record",
]


@dataclass(frozen=True)
class Records:
    """What an Intune source yields (the fields the pipeline reads)."""

    frame: pd.DataFrame
    records: int
    dropped: int
    windows: int
    source: str = "intune.csv"
    loaded_at: str = "2026-11-23T07:00:00+00:00"
    problems: list[str] = field(default_factory=list)


DEVICES = [
    {"AADDeviceID": GUID, "MDMWorkloads": "8193"},  # agree, noncompliant + authority mismatch
    {"AADDeviceID": OTHER},  # missing
    {"AADDeviceID": THIRD},  # stale
    {**NOT_COMANAGED, "AADDeviceID": THIRD.replace("5", "6"), "SiteCode": "PS2"},  # ahead
]
RECORDS = [
    {"complianceState": "noncompliant"},
    {"azureADDeviceId": THIRD, "lastSyncDateTime": AS_OF - pd.Timedelta(days=30)},
    {"azureADDeviceId": THIRD.replace("5", "6"), "deviceName": "AHEAD"},
    {"azureADDeviceId": THIRD.replace("5", "7"), "deviceName": "ONLY"},  # Intune only
    {"azureADDeviceId": THIRD.replace("5", "8"), "deviceName": "MDM", "managementAgent": "mdm"},
]


def estate(with_intune: bool) -> Estate:
    """An estate built the way a load builds it: classify, reconcile, then attention."""
    frame = classified(DEVICES)
    records = None
    if with_intune:
        source = intune(RECORDS)
        records = Records(source, records=len(source) + 2, dropped=1, windows=len(source))
        frame = frame.assign(**dict(reconcile(frame, source, AS_OF, 7).items()))
        frame = evaluate(frame.drop(columns=["attention"]), Thresholds(), AS_OF)
    memberships = pd.DataFrame(
        {
            "site": pd.Series(dtype=str),
            "ResourceID": pd.Series(dtype="int64"),
            "CollectionID": pd.Series(dtype=str),
            "CollectionName": pd.Series(dtype=str),
            "row": pd.Series(dtype="int64"),
        }
    )
    return Estate(
        devices=frame,
        memberships=memberships,
        sources=[],
        data_as_of=AS_OF.isoformat() + "+00:00",
        intune=records,
    )


def summary_of(e: Estate, mask=None) -> dict:
    return summarize(e.devices, [], e.data_as_of, mask, intune=e.intune_figures())


def test_rules_are_appended_so_stored_bits_keep_their_meaning():
    assert [rule.id for rule in RULES] == BEFORE + list(INTUNE_RULE_IDS)
    severities = {rule.id: rule.severity for rule in RULES if rule.id in INTUNE_RULE_IDS}
    assert severities == {
        "intune-missing": "high",
        "intune-stale": "medium",
        "intune-noncompliant": "medium",
        "authority-mismatch": "low",
        "intune-ahead": "low",
    }
    mismatch = next(rule for rule in RULES if rule.id == "authority-mismatch")
    assert "Inferred" in mismatch.explanation


def test_without_an_intune_source_nothing_changes():
    e = estate(False)
    summary = summary_of(e)
    assert "intune" not in summary
    assert list(summary["attention"]) == BEFORE
    assert not any(c.startswith(("intune_", "authority")) for c in e.devices.columns)
    assert e.intune_figures() is None
    assert len(e.intune_only) == 0
    table = format_table(summary, Settings(sources=()))
    assert "ConfigMgr and Intune" not in table
    assert "Intune records" not in table


def test_intune_rules_fire_on_the_reconciled_columns():
    devices = estate(True).devices
    hits = [rule_ids(int(mask)) for mask in devices["attention"]]
    assert "intune-noncompliant" in hits[0]
    assert "authority-mismatch" in hits[0]
    assert "intune-missing" in hits[1]
    assert "intune-stale" in hits[2]
    assert "intune-ahead" in hits[3]
    assert devices["severity"].iloc[1] == "high"


def test_summary_intune_object_and_site_filter():
    e = estate(True)
    summary = summary_of(e)
    intune_part = summary["intune"]
    assert intune_part["records"] == 7
    assert intune_part["windows"] == 5
    assert intune_part["dropped"] == 1
    assert intune_part["intune_only"] == 1  # the plain MDM record is not co-managed
    assert intune_part["reconciliation"] == {
        "agree": 1,
        "missing": 1,
        "stale": 1,
        "not-comanaged-in-intune": 0,
        "intune-ahead": 1,
    }
    assert intune_part["matched"] == 3
    assert intune_part["compliance"]["noncompliant"] == 1
    assert intune_part["compliance"]["no_record"] == 2
    assert summary["attention"]["intune-missing"] == 1
    assert list(summary["attention"]) == BEFORE + list(INTUNE_RULE_IDS)
    ps2 = summary_of(e, e.mask("PS2"))["intune"]
    assert ps2["reconciliation"]["intune-ahead"] == 1
    assert ps2["matched"] == 1
    assert (ps2["records"], ps2["intune_only"]) == (7, 1)  # the whole source, whatever the filter


def test_summary_table_shows_the_intune_counts():
    table = format_table(summary_of(estate(True)), Settings(sources=()))
    assert "ConfigMgr and Intune" in table
    assert "Missing in Intune" in table
    assert "See ConfigMgr" in table
    assert "Compliance authority mismatch" in table


@pytest.fixture
def history(tmp_path):
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.sqlite'}")
    yield store
    store.close()


def test_history_keeps_the_intune_counts_per_snapshot(history):
    e = estate(True)
    history.record(e.snapshot())
    frame = history.trend()
    assert frame["intune.reconciliation.missing"].iloc[-1] == 1
    assert frame["intune.reconciliation.intune-ahead"].iloc[-1] == 1
    # Intune-only records belong to no site: filed once, not once per site.
    assert frame["intune.intune_only"].iloc[-1] == 1
    assert frame["intune.matched"].iloc[-1] == 3
    day = summary_from_metrics(history.aggregates(date(2026, 11, 23)))
    assert day["intune"]["reconciliation"]["stale"] == 1
    assert day["intune"]["compliance"]["noncompliant"] == 1
    assert "intune-missing" in day["attention"]
    series = trend_series(frame)
    assert series["reconciliation_missing"].iloc[-1] == 1
    assert series["attention_intune-missing"].iloc[-1] == 1


def test_history_without_intune_has_no_intune_metrics(history):
    history.record(estate(False).snapshot())
    frame = history.trend()
    assert not [c for c in frame.columns if c.startswith("intune.")]
    assert "intune" not in summary_from_metrics(history.aggregates(date(2026, 11, 23)))
    series = trend_series(frame)
    assert "attention_intune-missing" not in series.columns
    assert "reconciliation_missing" not in series.columns

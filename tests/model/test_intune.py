"""Reconciliation with Intune: one test per matching, staleness, state, compliance and
authority rule, plus invariants over random estates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.model.intune import (
    COMPLIANCE_STATES,
    RECONCILIATION_STATES,
    intune_metrics,
    intune_only_rows,
    intune_summary,
    reconcile,
    reconciled,
)
from tests.factories import AS_OF, classified

GUID = "0324c5f7-fd36-4771-ba21-3ca24da48f7f"
OTHER = "388bbee0-6254-492f-b3e6-824ea755646b"
ZERO = "00000000-0000-0000-0000-000000000000"
NOT_COMANAGED = {"MDMEnrolled": "0", "ComgmtPolicyPresent": "0", "MDMWorkloads": ""}
AGENTS = {10: "configurationManagerClientMdm", 11: "configurationManagerClientMdmEas"}
RECORD = {
    "id": "r",
    "deviceName": "PC-1",
    "operatingSystem": "Windows",
    "osVersion": "10.0.22631.4460",
    "userPrincipalName": "user@contoso.com",
    "azureADDeviceId": GUID,
    "managementAgent": "configurationManagerClientMdm",
    "complianceState": "compliant",
    "lastSyncDateTime": AS_OF - pd.Timedelta(days=1),
    "enrolledDateTime": AS_OF - pd.Timedelta(days=100),
}


def intune(records: list[dict]) -> pd.DataFrame:
    """An Intune source's frame (the columns and types the interface names)."""
    rows = [{**RECORD, "id": f"r{i}", **record} for i, record in enumerate(records)]
    frame = pd.DataFrame(rows, columns=list(RECORD))
    for column in ("id", "deviceName", "operatingSystem", "osVersion", "userPrincipalName"):
        frame[column] = frame[column].astype("str")
    frame["azureADDeviceId"] = frame["azureADDeviceId"].astype("str")
    frame["managementAgent"] = frame["managementAgent"].astype("str")
    frame["comanaged"] = frame["managementAgent"].isin(AGENTS.values())
    frame["complianceState"] = frame["complianceState"].astype("str")
    for column in ("lastSyncDateTime", "enrolledDateTime"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
    return frame


def run(devices: list[dict], records: list[dict], stale_days: int = 7) -> pd.DataFrame:
    frame = classified([{"AADDeviceID": GUID, **d} for d in devices])
    return reconcile(frame, intune(records), AS_OF, stale_days)


def state_of(device: dict, records: list[dict], **kwargs):
    value = run([device], records, **kwargs)["intune_state"].iloc[0]
    return None if pd.isna(value) else value


# Matching by ID


def test_agree_when_both_sides_say_comanaged():
    out = run([{}], [{}])
    assert out["intune_state"].iloc[0] == "agree"
    assert out["intune_match"].iloc[0] == "id"
    assert out["intune_row"].iloc[0] == 0


@pytest.mark.parametrize(
    "configmgr",
    [GUID.upper(), "{" + GUID + "}", "{" + GUID.upper() + "}", " " + GUID + " "],
)
def test_ids_compare_ignoring_case_and_braces(configmgr):
    assert state_of({"AADDeviceID": configmgr}, [{}]) == "agree"


def test_intune_side_ids_are_normalised_too():
    assert state_of({}, [{"azureADDeviceId": "{" + GUID.upper() + "}"}]) == "agree"


@pytest.mark.parametrize("empty", [ZERO, "{" + ZERO + "}", ""])
def test_all_zero_or_empty_id_is_no_id(empty):
    # Both sides zero: no match by ID. The names differ, so no match at all.
    out = run([{"AADDeviceID": empty}], [{"azureADDeviceId": ZERO, "deviceName": "OTHER"}])
    assert out["intune_state"].iloc[0] == "missing"
    assert out["intune_row"].iloc[0] == -1
    assert pd.isna(out["intune_match"].iloc[0])


def test_missing_when_claiming_enrollment_without_a_record():
    assert state_of({}, [{"azureADDeviceId": OTHER, "deviceName": "X"}]) == "missing"
    assert state_of({}, []) == "missing"


def test_most_recently_synced_record_decides():
    records = [
        {"managementAgent": "mdm", "lastSyncDateTime": AS_OF - pd.Timedelta(days=20)},
        {"lastSyncDateTime": AS_OF - pd.Timedelta(days=1), "complianceState": "noncompliant"},
        {"managementAgent": "mdm", "lastSyncDateTime": pd.NaT},
    ]
    out = run([{}], records)
    assert out["intune_row"].iloc[0] == 1
    assert out["intune_state"].iloc[0] == "agree"
    assert out["intune_compliance"].iloc[0] == "noncompliant"


def test_older_records_of_a_matched_id_are_not_intune_only():
    records = [{"lastSyncDateTime": AS_OF - pd.Timedelta(days=30)}, {}]
    frame = classified([{"AADDeviceID": GUID}])
    assert intune_only_rows(frame, intune(records)).tolist() == []


def test_unmatched_comanaged_records_are_intune_only_stale_or_not():
    records = [
        {"azureADDeviceId": OTHER, "deviceName": "GONE-1"},
        {"azureADDeviceId": pd.NA, "deviceName": "GONE-2", "lastSyncDateTime": pd.NaT},
        {"azureADDeviceId": OTHER.replace("3", "4"), "deviceName": "MDM", "managementAgent": "mdm"},
        {},
    ]
    frame = classified([{"AADDeviceID": GUID}])
    assert intune_only_rows(frame, intune(records)).tolist() == [0, 1]


# Matching by name


def test_matches_by_name_without_an_id_ignoring_case():
    out = run(
        [{"AADDeviceID": "", "Name": "Desk-7"}],
        [{"azureADDeviceId": OTHER, "deviceName": "DESK-7"}],
    )
    assert out["intune_match"].iloc[0] == "name"
    assert out["intune_state"].iloc[0] == "agree"


def test_no_name_match_when_the_record_has_an_id():
    out = run(
        [{"AADDeviceID": OTHER.replace("8", "9"), "Name": "D"}],
        [{"azureADDeviceId": OTHER, "deviceName": "D"}],
    )
    assert out["intune_state"].iloc[0] == "missing"


def test_no_name_match_when_the_name_repeats_in_the_site():
    devices = [{"AADDeviceID": "", "Name": "D"}, {"AADDeviceID": GUID, "Name": "d"}]
    out = run(devices, [{"azureADDeviceId": OTHER, "deviceName": "D"}])
    assert out["intune_state"].iloc[0] == "missing"


def test_a_name_repeated_in_another_site_still_matches():
    devices = [
        {"AADDeviceID": "", "Name": "D", "SiteCode": "PS1"},
        {"AADDeviceID": "", "Name": "D", "SiteCode": "PS2"},
    ]
    out = run(devices, [{"azureADDeviceId": OTHER, "deviceName": "D"}])
    # One Intune record, matched by a record of each site: each reconciled on its own.
    assert out["intune_match"].tolist() == ["name", "name"]
    assert out["intune_row"].tolist() == [0, 0]


def test_no_name_match_when_two_intune_records_have_the_name():
    records = [
        {"azureADDeviceId": OTHER, "deviceName": "D"},
        {"azureADDeviceId": pd.NA, "deviceName": "d"},
    ]
    frame = classified([{"AADDeviceID": "", "Name": "D"}])
    out = reconcile(frame, intune(records), AS_OF, 7)
    assert out["intune_state"].iloc[0] == "missing"
    assert intune_only_rows(frame, intune(records)).tolist() == [0, 1]


def test_no_name_match_with_a_record_taken_by_an_id_match():
    devices = [{"AADDeviceID": "", "Name": "D"}, {"AADDeviceID": OTHER, "Name": "E"}]
    out = run(devices, [{"azureADDeviceId": OTHER, "deviceName": "D"}])
    assert out["intune_state"].tolist() == ["missing", "agree"]
    assert out["intune_match"].iloc[1] == "id"


# Staleness


@pytest.mark.parametrize(
    "age, state", [(6.9, "agree"), (7, "agree"), (7.0001, "stale"), (30, "stale")]
)
def test_stale_is_older_than_stale_days(age, state):
    assert state_of({}, [{"lastSyncDateTime": AS_OF - pd.Timedelta(days=age)}]) == state


def test_stale_days_comes_from_the_setting():
    record = [{"lastSyncDateTime": AS_OF - pd.Timedelta(days=3)}]
    assert state_of({}, record, stale_days=2) == "stale"
    assert state_of({}, record, stale_days=3) == "agree"


def test_never_synced_is_stale():
    assert state_of({}, [{"lastSyncDateTime": pd.NaT}]) == "stale"


def test_as_of_with_a_time_zone_is_utc():
    frame = classified([{"AADDeviceID": GUID}])
    records = intune([{"lastSyncDateTime": AS_OF - pd.Timedelta(days=7)}])
    aware = AS_OF.tz_localize("UTC")
    assert reconcile(frame, records, aware, 7)["intune_state"].iloc[0] == "agree"
    later = aware.tz_convert("Europe/Berlin") + pd.Timedelta(hours=1)
    assert reconcile(frame, records, later, 7)["intune_state"].iloc[0] == "stale"


# States


def test_not_comanaged_in_intune_when_current_and_agent_is_not_10_or_11():
    for agent in ("mdm", "configurationManagerClient", "someNewAgent", "42"):
        assert state_of({}, [{"managementAgent": agent}]) == "not-comanaged-in-intune"


def test_stale_wins_over_not_comanaged_in_intune():
    record = {"managementAgent": "mdm", "lastSyncDateTime": AS_OF - pd.Timedelta(days=9)}
    assert state_of({}, [record]) == "stale"


def test_agent_11_is_comanaged():
    assert state_of({}, [{"managementAgent": AGENTS[11]}]) == "agree"


def test_intune_ahead_when_configmgr_does_not_claim_enrollment():
    assert state_of(NOT_COMANAGED, [{}]) == "intune-ahead"


@pytest.mark.parametrize(
    "record",
    [
        {"managementAgent": "mdm"},
        {"lastSyncDateTime": AS_OF - pd.Timedelta(days=8)},
        {"azureADDeviceId": OTHER, "deviceName": "X"},
    ],
)
def test_no_state_for_records_not_claiming_enrollment_otherwise(record):
    assert state_of(NOT_COMANAGED, [record]) is None


def test_claim_is_mdm_enrolled_even_without_policy():
    # MDMEnrolled = 1 claims enrollment though the record is not co-managed (no policy).
    assert state_of({"ComgmtPolicyPresent": "0"}, []) == "missing"


# Compliance and authority


@pytest.mark.parametrize("state", COMPLIANCE_STATES[:-1])
def test_compliance_of_comanaged_records_with_a_current_match(state):
    out = run([{}], [{"complianceState": state}])
    assert out["intune_compliance"].iloc[0] == state


@pytest.mark.parametrize("written", ["", "bogus", "<NA>"])
def test_unlisted_compliance_counts_as_unknown(written):
    out = run([{}], [{"complianceState": written}])
    assert out["intune_compliance"].iloc[0] == "unknown"


@pytest.mark.parametrize(
    "record",
    [
        {"lastSyncDateTime": AS_OF - pd.Timedelta(days=8)},
        {"azureADDeviceId": OTHER, "deviceName": "X"},
    ],
)
def test_no_record_when_comanaged_without_a_current_match(record):
    assert run([{}], [record])["intune_compliance"].iloc[0] == "no_record"


def test_no_compliance_for_records_not_comanaged():
    out = run([NOT_COMANAGED, {"ComgmtPolicyPresent": "0"}], [{}])
    assert out["intune_compliance"].isna().all()


@pytest.mark.parametrize(
    "workloads, state, mismatch",
    [
        ("8195", "configManager", True),  # bit 2 set: Intune evaluates, yet "See ConfigMgr"
        ("8195", "compliant", False),
        ("8195", "noncompliant", False),
        ("8193", "compliant", True),  # bit 2 clear: ConfigMgr evaluates, yet an Intune verdict
        ("8193", "error", True),
        ("8193", "configManager", False),
        ("8193", "unknown", False),  # unknown says nothing about who evaluates
        ("8195", "unknown", False),
        ("", "compliant", False),  # unknown MDMWorkloads too
        ("", "configManager", False),
        ("4098", "configManager", True),  # bits are tested, never whole values
    ],
)
def test_authority_mismatch(workloads, state, mismatch):
    out = run([{"MDMWorkloads": workloads}], [{"complianceState": state}])
    assert bool(out["authority_mismatch"].iloc[0]) is mismatch


def test_authority_check_needs_a_current_match():
    old = {"complianceState": "compliant", "lastSyncDateTime": AS_OF - pd.Timedelta(days=8)}
    assert not run([{"MDMWorkloads": "8193"}], [old])["authority_mismatch"].iloc[0]


# The summary object


def test_summary_counts_and_filters_apply_to_configmgr_side_only():
    devices = [
        {"MDMWorkloads": "8195"},
        {"AADDeviceID": "", "Name": "BYNAME", "MDMWorkloads": "8193"},
        {"AADDeviceID": OTHER},
        {**NOT_COMANAGED, "AADDeviceID": OTHER.replace("b", "c")},
    ]
    records = [
        {"complianceState": "noncompliant"},
        {"azureADDeviceId": pd.NA, "deviceName": "byname", "complianceState": "compliant"},
        {"azureADDeviceId": OTHER.replace("b", "c")},
        {"azureADDeviceId": OTHER.replace("b", "d"), "deviceName": "ONLY"},
    ]
    frame = classified([{"AADDeviceID": GUID, **d} for d in devices])
    frame = pd.concat([frame, reconcile(frame, intune(records), AS_OF, 7)], axis=1)
    only = len(intune_only_rows(frame, intune(records)))
    whole = intune_summary(frame, records=7, windows=4, dropped=1, intune_only=only)
    assert whole == {
        "records": 7,
        "windows": 4,
        "dropped": 1,
        "matched": 3,
        "matched_by_name": 1,
        "reconciliation": {
            "agree": 2,
            "missing": 1,
            "stale": 0,
            "not-comanaged-in-intune": 0,
            "intune-ahead": 1,
        },
        "intune_only": 1,
        "compliance": {
            "compliant": 1,
            "noncompliant": 1,
            "inGracePeriod": 0,
            "conflict": 0,
            "error": 0,
            "unknown": 0,
            "configManager": 0,
            "no_record": 1,
        },
        "authority_mismatch": 1,
    }
    first = intune_summary(
        frame, records=7, windows=4, dropped=1, intune_only=only, mask=np.array([1, 0, 0, 0], bool)
    )
    assert (first["records"], first["windows"], first["intune_only"]) == (7, 4, 1)
    assert first["matched"] == 1
    assert first["reconciliation"]["agree"] == 1
    assert sum(first["compliance"].values()) == 1
    metrics = intune_metrics(whole)
    assert metrics["intune.reconciliation.intune-ahead"] == 1
    assert metrics["intune.compliance.no_record"] == 1
    assert metrics["intune.matched"] == 3
    assert len(metrics) == len(RECONCILIATION_STATES) + len(COMPLIANCE_STATES) + 3


# Invariants over random estates

names = st.sampled_from(["A", "a", "B", "C", "", "D"])
ids = st.sampled_from([GUID, GUID.upper(), OTHER, "{" + OTHER + "}", ZERO, ""])
flags = st.sampled_from(["1", "0", ""])
configmgr_records = st.fixed_dictionaries(
    {
        "Name": names,
        "AADDeviceID": ids,
        "MDMEnrolled": flags,
        "ComgmtPolicyPresent": flags,
        "MDMWorkloads": st.sampled_from(["", "1", "3", "8193", "8195"]),
        "SiteCode": st.sampled_from(["PS1", "PS2"]),
    }
)
intune_records = st.fixed_dictionaries(
    {
        "deviceName": names,
        "azureADDeviceId": st.sampled_from([GUID, OTHER.upper(), ZERO, pd.NA]),
        "managementAgent": st.sampled_from(["mdm", *AGENTS.values(), "configurationManagerClient"]),
        "complianceState": st.sampled_from([*COMPLIANCE_STATES[:-1], "junk"]),
        "lastSyncDateTime": st.sampled_from(
            [pd.NaT, AS_OF, AS_OF - pd.Timedelta(days=7), AS_OF - pd.Timedelta(days=8)]
        ),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    devices=st.lists(configmgr_records, min_size=1, max_size=8),
    records=st.lists(intune_records, max_size=8),
)
def test_invariants(devices, records):
    frame = classified(devices)
    source = intune(records)
    out = reconcile(frame, source, AS_OF, 7)
    both = pd.concat([frame, out], axis=1)
    only = intune_only_rows(frame, source)
    summary = intune_summary(
        both, records=len(records), windows=len(records), dropped=0, intune_only=len(only)
    )
    claims = int((frame["MDMEnrolled"] == 1).sum())
    reconciliation = summary["reconciliation"]
    # Every record claiming enrollment gets exactly one of the first four states.
    assert sum(reconciliation.values()) - reconciliation["intune-ahead"] == claims
    assert sum(summary["compliance"].values()) == int(frame["comanaged"].sum())
    assert summary["matched_by_name"] <= summary["matched"] <= len(frame)
    assert summary["authority_mismatch"] <= sum(summary["compliance"].values())
    # A record intune_only lists is matched by no ConfigMgr record, and is co-managed.
    assert not set(only.tolist()) & set(out["intune_row"].tolist())
    assert source["comanaged"].to_numpy()[only].all()
    # Missing means no match at all; every matched record points at a real row.
    assert (out.loc[out["intune_state"] == "missing", "intune_row"] == -1).all()
    assert out["intune_row"].between(-1, len(records) - 1).all()
    assert ((out["intune_row"] >= 0) == out["intune_match"].notna()).all()
    # The decision does not depend on the order of the Intune rows' duplicates.
    flipped = reconcile(frame, source.iloc[::-1].reset_index(drop=True), AS_OF, 7)
    assert flipped["intune_state"].equals(out["intune_state"]) or _same_up_to_ties(source)


def _same_up_to_ties(source: pd.DataFrame) -> bool:
    """Two records of one ID synced at the same time: the row order breaks the tie."""
    ids = source["azureADDeviceId"].str.lower()
    return bool(source.assign(id_=ids).duplicated(["id_", "lastSyncDateTime"]).any())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([GUID, OTHER, ZERO, "", "{" + GUID + "}"]), max_size=12),
    st.lists(
        st.sampled_from([GUID.upper(), "{" + OTHER + "}", ZERO, "", "not-a-guid"]), max_size=12
    ),
)
def test_the_fast_id_path_groups_as_the_text_path(left, right):
    from dashboard.model.intune import _codes, _id_codes, normalise_guids

    a = normalise_guids(pd.Series(left, dtype="str"))
    b = normalise_guids(pd.Series(right, dtype="str"))
    fast_left, fast_right, _ = _id_codes(a, b)
    text_left, text_right, _ = _codes(a, b)
    fast, text = np.r_[fast_left, fast_right], np.r_[text_left, text_right]
    assert ((fast < 0) == (text < 0)).all()
    pairs = set(zip(fast[fast >= 0].tolist(), text[text >= 0].tolist(), strict=True))
    assert len(pairs) == len({f for f, _ in pairs}) == len({t for _, t in pairs})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    devices=st.lists(configmgr_records, min_size=1, max_size=8),
    records=st.lists(intune_records, max_size=8),
)
def test_one_matching_gives_the_columns_and_the_intune_only_rows(devices, records):
    """The pipeline matches once (``reconciled``): the same columns as ``reconcile`` and the
    same rows as ``intune_only_rows``, which match on their own."""
    frame = classified(devices)
    source = intune(records)
    columns, only = reconciled(frame, source, AS_OF, 7)
    pd.testing.assert_frame_equal(columns, reconcile(frame, source, AS_OF, 7))
    assert only.tolist() == intune_only_rows(frame, source).tolist()

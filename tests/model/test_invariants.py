"""Property tests of the state model (issue 7): on random estates, every count the tiles show
adds up the way docs/definitions.md §4 says, whatever the flags, builds and pilot set-up.

Kept quick for CI (``FUZZ_EXAMPLES``, 200 by default); ``benchmarks/fuzz.py`` runs many more.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.model.attention import RULE_BITS
from dashboard.model.states import FUNNEL_STAGES
from dashboard.model.summary import summarize
from dashboard.settings import STAGES, WORKLOADS
from tests.factories import classified

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

flag = st.sampled_from(["1", "0", "", "True", "false", "NULL"])
device = st.fixed_dictionaries(
    {
        "OperatingSystem": st.sampled_from(
            [
                "Microsoft Windows NT Workstation 10.0",
                "Microsoft Windows NT Server 10.0",
                "Microsoft Windows NT Workstation 6.1",
                "Microsoft Windows NT Workstation 6.3",
                "",
                "Microsoft Windows NT Workstation 10.0 (Tablet Edition)",
                "Linux",
            ]
        ),
        "Build": st.one_of(
            st.sampled_from(["10.0", "", "6.1.7601"]),
            st.integers(10240, 27000).map(lambda b: f"10.0.{b}"),
            st.integers(10240, 27000).map(str),
        ),
        "ProductType": st.sampled_from(["1", "2", "3", "", "7"]),
        **{
            name: flag
            for name in (
                "ClientInstalled",
                "ClientActive",
                "HybridAADJoined",
                "AADJoined",
                "MDMEnrolled",
                "ComgmtPolicyPresent",
                "MDMProvisioned",
                "EnrollmentScheduled",
                "PendingLogon",
                "EnrollmentFailed",
            )
        },
        "EnrollmentStatusCode": st.one_of(
            st.just(""),
            st.sampled_from(["0x8018002A", "0x80180002", "-2145910774"]),
            st.integers(0, 2**32 - 1).map(lambda c: f"0x{c:08X}"),
        ),
        "EnrollmentErrorDetail": st.sampled_from(["", "Detail A", "<b>x</b>"]),
        "MDMWorkloads": st.one_of(st.just(""), st.integers(0, 2**14).map(str)),
        "LastPolicyRequest": st.sampled_from(["2026-11-22 10:00:00.000", "", "2025-01-01"]),
        "Name": st.sampled_from(["PC-1", "pc-1", "Pc-1", "PC-2", "LAPTOP", ""]),
    }
)


@st.composite
def estates(draw):
    devices = draw(st.lists(device, min_size=1, max_size=40))  # the factory needs 1+
    n = len(devices)
    stages = {key: draw(st.sampled_from(STAGES)) for key in WORKLOADS if draw(st.booleans())}
    pilots = {
        key: draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=n, unique=True)) if n else []
        for key in stages
    }
    return devices, pilots, stages


def check(devices, pilots, stages) -> tuple[dict, object]:
    frame = classified(devices, pilots=pilots, stages=stages)
    summary = summarize(frame, [], "2026-11-23T07:00:00+00:00")
    total, comanaged = summary["devices"], summary["comanaged"]
    assert total == len(devices)

    # Funnel: each stage within the one before, as device sets, not only as counts.
    columns = {
        "eligible": "eligible",
        "scheduled": "scheduled",
        "initiated": "initiated",
        "enrolled": "comanaged",
    }
    for before, after in itertools.pairwise(FUNNEL_STAGES):
        inner = frame[columns[after]].to_numpy(bool)
        outer = frame[columns[before]].to_numpy(bool)
        assert not (inner & ~outer).any(), (after, before)
        assert summary["funnel"][after] <= summary["funnel"][before]
    assert summary["funnel"]["enrolled"] == comanaged

    targeted = int(frame["targeted"].sum())
    assert sum(summary["enrollment_status"].values()) == targeted
    assert sum(summary["not_comanaged_reasons"].values()) == total - comanaged
    for key, authorities in summary["workloads"].items():
        assert sum(authorities.values()) == comanaged, key
        if stages.get(key, "configmgr") != "pilot":
            assert authorities["pilot_intune"] == 0, key
    # The OS figures count client devices; the records without the client make up the rest.
    clients = int((frame["ClientInstalled"].to_numpy(dtype=float) == 1).sum())
    assert summary["without_client"] == total - clients
    assert sum(summary["os_groups"].values()) == clients
    assert sum(summary["os_releases"].values()) == clients
    failures = (
        summary["enrollment_status"]["failure_hybrid"] + summary["enrollment_status"]["failure_aad"]
    )
    assert sum(error["count"] for error in summary["enrollment_errors"]) == failures
    assert all(error["count"] > 0 for error in summary["enrollment_errors"])
    assert comanaged <= targeted <= total
    assert summary["attention_devices"] <= total
    # The reason and the status agree on who is co-managed.
    status = frame["enrollment_status"].astype("str").to_numpy()
    success = np.isin(status, ["success_hybrid", "success_aad"])
    assert (success == frame["comanaged"].to_numpy(bool)).all()
    assert frame.loc[frame["comanaged"], "reason"].isna().all()
    # Duplicate records: one keeper per name (ignoring case), every other record flagged and
    # pointing at it; a keeper has the client whenever a record of its name has it.
    flagged = (frame["attention"].to_numpy() & RULE_BITS["duplicate-record"]) != 0
    assert summary["attention"]["duplicate-record"] == int(flagged.sum())
    names = frame["Name"].astype("str").str.lower()
    client = frame["ClientInstalled"].to_numpy(dtype=float) == 1
    for rows in frame.groupby(names[names.notna() & (names != "")]).groups.values():
        rows = frame.index.get_indexer(rows)
        keepers = rows[~flagged[rows]]
        assert len(keepers) == 1 and flagged[rows].sum() == len(rows) - 1
        keeper_id = int(frame["ResourceID"].iat[keepers[0]])
        assert (frame["duplicate_of"].to_numpy()[rows[flagged[rows]]] == keeper_id).all()
        assert client[keepers[0]] or not client[rows].any()
    return summary, frame


@FUZZ
@given(estate=estates())
def test_counts_add_up_on_random_estates(estate):
    check(*estate)


@FUZZ
@given(estate=estates(), data=st.data())
def test_a_subset_never_counts_more(estate, data):
    """Filtering (a site, a collection) only ever removes devices from every count."""
    devices, pilots, stages = estate
    whole, frame = check(devices, pilots, stages)
    keep = data.draw(st.lists(st.booleans(), min_size=len(devices), max_size=len(devices)))
    part = summarize(frame.loc[np.asarray(keep, dtype=bool)], [], "2026-11-23T07:00:00+00:00")
    for key in ("devices", "comanaged", "attention_devices", "without_client"):
        assert part[key] <= whole[key], key
    for key in ("funnel", "enrollment_status", "os_groups", "not_comanaged_reasons"):
        for name, count in part[key].items():
            assert count <= whole[key][name], (key, name)

"""Small hand-made estates for unit tests: one dict per device, defaults for the rest."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.data.contract import DEVICE_COLUMNS, parse_devices
from dashboard.model.attention import Thresholds, evaluate, readiness_failure
from dashboard.model.states import classify

# A healthy co-managed Windows 11 23H2 hybrid-joined workstation.
DEFAULTS = {
    "Name": "PC",
    "Domain": "CONTOSO",
    "OperatingSystem": "Microsoft Windows NT Workstation 10.0",
    "Build": "10.0.22631",
    "ProductType": "1",
    "ClientInstalled": "1",
    "ClientVersion": "5.0",
    "ClientActive": "1",
    "LastPolicyRequest": "2026-11-22 10:00:00.000",
    "LastActiveTime": "2026-11-22 10:00:00.000",
    "AADDeviceID": "x",
    "HybridAADJoined": "1",
    "AADJoined": "0",
    "MDMEnrolled": "1",
    "ComgmtPolicyPresent": "1",
    "MDMProvisioned": "1",
    "EnrollmentScheduled": "0",
    "PendingLogon": "0",
    "EnrollmentFailed": "0",
    "EnrollmentStatusCode": "",
    "EnrollmentErrorDetail": "",
    "MDMWorkloads": "8193",
}
AS_OF = pd.Timestamp("2026-11-23T07:00:00")


def raw_frame(devices: list[dict]) -> pd.DataFrame:
    rows = []
    for index, device in enumerate(devices):
        # Distinct names, so that only a test that means it makes duplicate records.
        row = {"ResourceID": str(index + 1), **DEFAULTS, "Name": f"PC-{index + 1}", **device}
        rows.append(
            {column: row.get(column, "") for column in DEVICE_COLUMNS}
            | ({"SiteCode": row["SiteCode"]} if "SiteCode" in row else {})
        )
    return pd.DataFrame(rows, dtype="str")


def classified(
    devices: list[dict],
    pilots: dict[str, list[int]] | None = None,
    stages: dict[str, str] | None = None,
    inactive_days: int = 14,
    as_of: pd.Timestamp = AS_OF,
) -> pd.DataFrame:
    """Parse, classify and evaluate attention, like a load does."""
    typed = parse_devices(raw_frame(devices)).frame
    # The site: a device's SiteCode when given (as a load does), else PS1.
    sites = typed.pop("SiteCode").astype("object").fillna("PS1") if "SiteCode" in typed else "PS1"
    typed.insert(0, "site", sites)
    members = {}
    for key, rows in (pilots or {}).items():
        mask = np.zeros(len(typed), dtype=bool)
        mask[rows] = True
        members[key] = mask
    out = classify(typed, members, stages or {})
    out["readiness"] = readiness_failure(out)
    return evaluate(out, Thresholds(inactive_days), as_of)


def one(device: dict, **kwargs) -> pd.Series:
    return classified([device], **kwargs).iloc[0]


def loaded_store(settings, **options):
    """An ``EstateStore`` with its data loaded (the test fails with the reason otherwise)."""
    from dashboard.store import EstateStore

    store = EstateStore(settings, **options)
    assert store.refresh(), store.status().error
    return store

"""Small hand-made estates for unit tests: one dict per device, defaults for the rest."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.data.contract import DEVICE_COLUMNS, parse_devices
from dashboard.model.attention import Thresholds
from dashboard.model.pipeline import Parameters, PreviousStates, derive
from dashboard.service.store import EstateStore

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
    previous: dict[str, PreviousStates] | None = None,
    site: str | None = None,
    rids: list[int] | None = None,
) -> pd.DataFrame:
    """Parse, then derive (``model.pipeline``) like a load does. ``previous``: the history's
    states (time in state); ``site`` and ``rids`` replace every device's site and the
    ResourceIDs."""
    typed = parse_devices(raw_frame(devices)).frame
    # The site: a device's SiteCode when given (as a load does), else PS1.
    sites = typed.pop("SiteCode").astype("object").fillna("PS1") if "SiteCode" in typed else "PS1"
    typed.insert(0, "site", site or sites)
    if rids is not None:
        typed["ResourceID"] = np.asarray(rids, dtype=np.int64)
    members = {}
    for key, rows in (pilots or {}).items():
        mask = np.zeros(len(typed), dtype=bool)
        mask[rows] = True
        members[key] = mask
    parameters = Parameters(
        as_of=as_of,
        thresholds=Thresholds(inactive_days),
        pilot_members=members,
        stages=stages or {},
    )
    return derive(typed, parameters, previous).devices


def one(device: dict, **kwargs) -> pd.Series:
    return classified([device], **kwargs).iloc[0]


def loaded_store(settings, **options):
    """An ``EstateStore`` with its data loaded (the test fails with the reason otherwise)."""

    store = EstateStore(settings, **options)
    assert store.refresh(), store.status().error
    return store

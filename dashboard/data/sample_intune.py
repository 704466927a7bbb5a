"""The sample estate's Intune export: ``intune.csv``, made from the generated ConfigMgr records.

What ``Get-MgDeviceManagementManagedDevice -All | Export-Csv`` would hold for the sample
tenant: one record per Windows device Intune knows, with the cases an admin meets between the
two consoles: records that agree, ConfigMgr records Intune has lost (missing), records that
stopped syncing (stale, some never synced), records Intune does not see as co-managed, devices
Intune already sees as co-managed while ConfigMgr does not (ahead), older records left by
re-enrollment, records matched by name (ConfigMgr knows no Entra device ID), co-managed
records ConfigMgr does not know (Intune only), every compliance state with the compliance
workload's authority mismatched on a few, and a few phones and Macs (not Windows, left out).

Its own random stream (seeded from the estate's seed), so every other sample file stays
byte-identical. Dates are ISO 8601 UTC, enums their names (a few as Graph's numbers).
"""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .sample import SampleEstate, _guids, export_devices

FILE = "intune.csv"
# Graph property names as PowerShell's Export-Csv writes them (the SDK's spelling).
COLUMNS = (
    "Id",
    "DeviceName",
    "AzureAdDeviceId",
    "ManagementAgent",
    "ComplianceState",
    "LastSyncDateTime",
    "EnrolledDateTime",
    "OperatingSystem",
    "OsVersion",
    "UserPrincipalName",
)
STREAM = 15  # the random stream's second key: the issue that brought the Intune side
DAY_US = 86_400_000_000
MDM, CM_CLIENT, COMANAGED, COMANAGED_EAS = (
    "mdm",
    "configurationManagerClient",
    "configurationManagerClientMdm",
    "configurationManagerClientMdmEas",
)
AGENT_NUMBERS = {MDM: "2", CM_CLIENT: "8", COMANAGED: "10", COMANAGED_EAS: "11"}
# Among ConfigMgr records claiming enrollment: the share Intune lost, the share that stopped
# syncing and the share Intune does not see as co-managed; the rest agree.
CLAIM_SHARES = {"missing": 0.025, "stale": 0.03, "not-comanaged": 0.02}
AHEAD_SHARE = 0.04  # of records with an ID that do not claim enrollment
BY_NAME = 24  # records without an Entra device ID that Intune has, by name
REENROLLED_SHARE = 0.015
INTUNE_ONLY = 40
NOT_WINDOWS = (("iOS", "17.6.1", "iPhone"), ("Android", "14", "Pixel"), ("macOS", "14.6", "MBP"))
# complianceState when Intune evaluates compliance (workload bit 2 set) and when ConfigMgr
# does; the off-diagonal values are the authority mismatches.
INTUNE_VERDICTS = (
    ("compliant", 0.84),
    ("noncompliant", 0.06),
    ("inGracePeriod", 0.03),
    ("conflict", 0.015),
    ("error", 0.015),
    ("unknown", 0.02),
    ("configManager", 0.02),
)
CONFIGMGR_VERDICTS = (("configManager", 0.93), ("compliant", 0.04), ("unknown", 0.03))
USERS = ("alex.wu", "sam.patel", "jo.martin", "kim.schulz", "lee.okafor", "ana.silva")


def _pick(rng: np.random.Generator, table: tuple, n: int) -> np.ndarray:
    values = np.array([v for v, _ in table], dtype=object)
    weights = np.array([w for _, w in table])
    return values[rng.choice(len(values), size=n, p=weights / weights.sum())]


def _frame(
    rng: np.random.Generator,
    names: np.ndarray,
    ids: np.ndarray,
    agents: np.ndarray,
    compliance: np.ndarray,
    sync_us: np.ndarray,
    os_name: np.ndarray,
    os_version: np.ndarray,
) -> pd.DataFrame:
    """Records with the Graph columns; ``sync_us`` microseconds since the epoch (-1: never)."""
    n = len(names)
    enrolled = (
        np.where(sync_us >= 0, sync_us, sync_us.max(initial=0))
        - rng.integers(30, 900, size=n) * DAY_US
    )
    users = np.array(USERS, dtype=object)[rng.integers(0, len(USERS), size=n)]
    return pd.DataFrame(
        {
            "id": _guids(rng, n),
            "deviceName": names,
            "azureADDeviceId": ids,
            "managementAgent": agents,
            "complianceState": compliance,
            "lastSyncDateTime": np.where(sync_us >= 0, sync_us, np.iinfo(np.int64).min).astype(
                "datetime64[us]"
            ),
            "enrolledDateTime": enrolled.astype("datetime64[us]"),
            "operatingSystem": os_name,
            "osVersion": os_version,
            "userPrincipalName": users + "@contoso.com",
        }
    )


def intune_records(devices: pd.DataFrame, as_of_us: int, seed: int) -> pd.DataFrame:
    """Intune's records for ConfigMgr ``devices`` (columns ``Name``, ``AADDeviceID``,
    ``MDMEnrolled``, ``MDMWorkloads``, ``Build``): typed as an Intune source yields them
    (dates naive UTC, agent and compliance names), in a shuffled order. Vectorised, so the
    benchmark can make a million."""
    rng = np.random.default_rng([seed, STREAM])
    n = len(devices)
    ids = devices["AADDeviceID"].astype("object").where(devices["AADDeviceID"].notna(), None)
    has_id = ids.notna().to_numpy()
    claims = pd.to_numeric(devices["MDMEnrolled"], errors="coerce").to_numpy() == 1
    bits = pd.to_numeric(devices["MDMWorkloads"], errors="coerce").to_numpy(dtype=float)
    intune_evaluates = (np.nan_to_num(bits).astype(np.int64) & 2) != 0
    build = devices["Build"].astype("str").str.extract(r"(\d{5})", expand=False)
    os_version = ("10.0." + build.fillna("19045") + ".").to_numpy(dtype=object) + rng.integers(
        1000, 5000, size=n
    ).astype(str).astype(object)

    draw = rng.random(n)
    cut = np.cumsum(list(CLAIM_SHARES.values()))
    # draw < cut[0]: missing, Intune has no record for these.
    stale = claims & has_id & (draw >= cut[0]) & (draw < cut[1])
    not_comanaged = claims & has_id & (draw >= cut[1]) & (draw < cut[2])
    agree = claims & has_id & (draw >= cut[2])
    ahead = ~claims & has_id & (rng.random(n) < AHEAD_SHARE)
    lower = devices["Name"].astype("str").str.lower()
    unique_name = ~lower.duplicated(keep=False).to_numpy() & devices["Name"].notna().to_numpy()
    # By name: ConfigMgr has no ID for these; Intune's record has one (or not) and the name in
    # another case. A few are co-managed in Intune (so ahead), the others plain MDM.
    candidates = np.flatnonzero(~has_id & unique_name & ~claims)
    by_name = np.zeros(n, dtype=bool)
    by_name[rng.permutation(candidates)[:BY_NAME]] = True

    rows = np.flatnonzero(agree | stale | not_comanaged | ahead | by_name)
    k = len(rows)
    agents = np.where(rng.random(k) < 0.9, COMANAGED, COMANAGED_EAS).astype(object)
    agents[not_comanaged[rows]] = np.where(
        rng.random(int(not_comanaged.sum())) < 0.6, MDM, CM_CLIENT
    )
    name_rows = by_name[rows]
    agents[name_rows] = np.where(rng.random(int(name_rows.sum())) < 0.3, COMANAGED, MDM)
    age = rng.uniform(0, 6.9, size=k) * DAY_US
    old = stale[rows]
    age[old] = rng.uniform(7.5, 90, size=int(old.sum())) * DAY_US
    sync = (as_of_us - age).astype(np.int64)
    never = np.flatnonzero(old)[: max(1, int(old.sum()) // 5)]
    sync[never] = -1  # never synced
    if k:
        sync[np.flatnonzero(agree[rows])[:1]] = as_of_us - 7 * DAY_US  # exactly 7 days: current
    verdict = np.where(
        intune_evaluates[rows],
        _pick(rng, INTUNE_VERDICTS, k),
        _pick(rng, CONFIGMGR_VERDICTS, k),
    )
    record_ids = ids.to_numpy()[rows].copy()
    fresh = np.flatnonzero(name_rows)
    record_ids[fresh] = np.where(rng.random(len(fresh)) < 0.5, _guids(rng, len(fresh)), None)
    names = devices["Name"].astype("str").to_numpy(dtype=object)[rows].copy()
    names[fresh] = np.char.lower(names[fresh].astype(str)).astype(object)
    windows = np.full(k, "Windows", dtype=object)
    parts = [
        _frame(rng, names, record_ids, agents, verdict, sync, windows, os_version[rows]),
    ]

    # Re-enrollment: an older record with the same ID, no longer syncing.
    again = rows[agree[rows] & (rng.random(k) < REENROLLED_SHARE)]
    m = len(again)
    parts.append(
        _frame(
            rng,
            devices["Name"].astype("str").to_numpy(dtype=object)[again],
            ids.to_numpy()[again],
            np.where(rng.random(m) < 0.5, MDM, COMANAGED).astype(object),
            np.where(rng.random(m) < 0.5, "unknown", "noncompliant").astype(object),
            (as_of_us - rng.uniform(20, 200, size=m) * DAY_US).astype(np.int64),
            np.full(m, "Windows", dtype=object),
            os_version[again],
        )
    )
    # Intune only: co-managed records ConfigMgr does not know (deleted or never discovered);
    # a few of them stale, and a few plain MDM records (not counted as Intune only).
    q = max(INTUNE_ONLY, n // 200)
    only_age = np.where(rng.random(q) < 0.2, rng.uniform(8, 60, q), rng.uniform(0, 5, q))
    parts.append(
        _frame(
            rng,
            np.array([f"CLOUD-LT-{i:06d}" for i in range(1, q + 1)], dtype=object),
            _guids(rng, q),
            np.where(rng.random(q) < 0.85, COMANAGED, MDM).astype(object),
            _pick(rng, INTUNE_VERDICTS[:6], q),
            (as_of_us - only_age * DAY_US).astype(np.int64),
            np.full(q, "Windows", dtype=object),
            np.full(q, "10.0.26100.2314", dtype=object),
        )
    )
    # Phones and Macs: counted as read, left out as not Windows.
    kinds = np.arange(max(12, n // 400)) % len(NOT_WINDOWS)
    parts.append(
        _frame(
            rng,
            np.array(
                [f"{NOT_WINDOWS[c][2]}-{i:05d}" for i, c in enumerate(kinds, 1)], dtype=object
            ),
            _guids(rng, len(kinds)),
            np.full(len(kinds), MDM, dtype=object),
            _pick(rng, INTUNE_VERDICTS[:2], len(kinds)),
            (as_of_us - rng.uniform(0, 3, len(kinds)) * DAY_US).astype(np.int64),
            np.array([NOT_WINDOWS[c][0] for c in kinds], dtype=object),
            np.array([NOT_WINDOWS[c][1] for c in kinds], dtype=object),
        )
    )
    out = pd.concat(parts, ignore_index=True)
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True)


def _estate_devices(estate: SampleEstate) -> pd.DataFrame:
    return pd.concat([export_devices(estate, site) for site in estate.sites], ignore_index=True)


def _as_of_us(as_of: datetime) -> int:
    stamp = pd.Timestamp(as_of.astimezone(UTC)).tz_localize(None)
    return int(stamp.to_datetime64().astype("datetime64[us]").astype(np.int64))


def _iso(values: pd.Series) -> pd.Series:
    text = values.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text.where(values.notna(), "")


def write_intune(estate: SampleEstate, config: Path) -> Path:
    """``intune.csv`` beside ``config`` and ``[intune] file = "intune.csv"`` appended to it."""
    records = intune_records(_estate_devices(estate), _as_of_us(estate.as_of), estate.seed)
    path = Path(config).parent / FILE
    _write_csv(records, path)
    with Path(config).open("a", encoding="utf-8") as handle:
        handle.write(f'\n[intune]\nfile = "{FILE}"\n')
    return path


def week_intune(settings, devices: list[pd.DataFrame], as_of: datetime, seed: int, folder: Path):
    """A past week's Intune export, made from that week's ConfigMgr records (so the history's
    Intune counts follow co-management's growth), and the ``[intune]`` settings reading it;
    ``settings`` unchanged when the sample has no Intune file."""
    if settings is None or settings.file is None:
        return settings
    path = Path(folder) / FILE
    records = intune_records(pd.concat(devices, ignore_index=True), _as_of_us(as_of), seed)
    _write_csv(records, path)
    return replace(settings, file=path.resolve())


def _write_csv(records: pd.DataFrame, path: Path) -> None:
    """Records as Export-Csv writes them: every field quoted, ISO 8601 dates."""
    agents = records["managementAgent"].astype(object)
    # A few agents as Graph's numbers, as some exports write them.
    numbered = np.arange(len(records)) % 97 == 0
    agents[numbered] = agents[numbered].map(AGENT_NUMBERS)
    table = pd.DataFrame(
        {
            "Id": records["id"],
            "DeviceName": records["deviceName"],
            "AzureAdDeviceId": records["azureADDeviceId"].fillna(""),
            "ManagementAgent": agents,
            "ComplianceState": records["complianceState"],
            "LastSyncDateTime": _iso(records["lastSyncDateTime"]),
            "EnrolledDateTime": _iso(records["enrolledDateTime"]),
            "OperatingSystem": records["operatingSystem"],
            "OsVersion": records["osVersion"],
            "UserPrincipalName": records["userPrincipalName"],
        },
        columns=list(COLUMNS),
    )
    table.to_csv(path, index=False, quoting=csv.QUOTE_ALL, lineterminator="\n")

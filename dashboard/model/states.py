"""The co-management state model (domain.md §4), vectorised over the whole estate.

``classify`` takes typed device rows (``dashboard.data.contract.parse_devices``) and returns
them with the derived columns every chart, filter and rule reads. It is pure: no I/O, the
same input always gives the same output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..settings import WORKLOADS
from .errors import NO_CODE

OS_GROUPS = (
    "Windows 10 1709 and later",
    "Windows 10 lower than 1709",
    "Windows 7 & 8.x",
    "Server",
    "Other",
)
W10_CURRENT, W10_OLD, W7_8, SERVER, OTHER = OS_GROUPS
MIN_BUILD = 16299  # Windows 10 1709: the first release co-management supports

WINDOWS10_RELEASES = {
    10240: "1507", 10586: "1511", 14393: "1607", 15063: "1703", 16299: "1709", 17134: "1803",
    17763: "1809", 18362: "1903", 18363: "1909", 19041: "2004", 19042: "20H2", 19043: "21H1",
    19044: "21H2", 19045: "22H2",
}
WINDOWS11_RELEASES = {22000: "21H2", 22621: "22H2", 22631: "23H2", 26100: "24H2"}
WINDOWS11_FIRST_BUILD = 22000

FUNNEL_STAGES = ("eligible", "scheduled", "initiated", "enrolled")
ENROLLMENT_STATUSES = (
    "success_hybrid", "success_aad", "enrolling_hybrid", "enrolling_aad",
    "failure_hybrid", "failure_aad", "pending_user_sign_in",
)
REASONS = (
    "server", "os-too-old", "os-unknown", "no-client", "not-joined", "no-policy", "failed",
    "pending-sign-in", "scheduled", "enrolling",
)
AUTHORITIES = ("configmgr", "pilot_intune", "intune")
JOIN_TYPES = ("hybrid", "aad")


def release_label(build: float) -> str:
    """``Windows 10 22H2`` / ``Windows 11 23H2`` / ``Windows 10 build 19046`` for a build."""
    build = int(build)
    if build >= WINDOWS11_FIRST_BUILD:
        name = WINDOWS11_RELEASES.get(build)
        return f"Windows 11 {name}" if name else f"Windows 11 build {build}"
    name = WINDOWS10_RELEASES.get(build)
    return f"Windows 10 {name}" if name else f"Windows 10 build {build}"


def _is_set(values: np.ndarray) -> np.ndarray:
    """A flag counts as set only when it is 1: unknown (NaN) never counts."""
    return np.asarray(values) == 1


def os_columns(devices: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(OS group, OS release, workstation) per device.

    ProductType decides whenever it is 1, 2 or 3; only when it is missing does the OS name.
    """
    product = devices["ProductType"].to_numpy(dtype=float)
    name = devices["OperatingSystem"].astype("str").str.lower()
    by_name_ws = name.str.contains("workstation", regex=False).fillna(False).to_numpy(bool)
    by_name_srv = name.str.contains("server", regex=False).fillna(False).to_numpy(bool)
    known = ~np.isnan(product)
    workstation = np.where(known, product == 1, by_name_ws & ~by_name_srv)
    server = np.where(known, (product == 2) | (product == 3), by_name_srv)
    nt = devices["NTVersion"].to_numpy(dtype=object)
    build = devices["BuildNumber"].to_numpy(dtype=float)
    nt10 = workstation & (nt == "10.0")
    has_build = ~np.isnan(build)
    group = np.select(
        [server, nt10 & has_build & (build >= MIN_BUILD), nt10 & has_build,
         workstation & np.isin(nt, ["6.1", "6.2", "6.3"])],
        [SERVER, W10_CURRENT, W10_OLD, W7_8],
        default=OTHER,
    )
    release = group.astype(object)
    labelled = nt10 & has_build
    if labelled.any():
        codes, uniques = pd.factorize(build[labelled])
        labels = np.array([release_label(b) for b in uniques], dtype=object)
        release[labelled] = labels[codes]
    return group, release, workstation


def classify(devices: pd.DataFrame, pilot_members: dict[str, np.ndarray],
             stages: dict[str, str]) -> pd.DataFrame:
    """Derive every state of §4 for each device.

    ``pilot_members`` maps a workload key to a boolean array (aligned with ``devices``) of
    membership in that workload's pilot collections, from the *full* membership whatever
    filter is shown later; ``stages`` maps a workload key to configmgr / pilot / intune.
    """
    out = devices.copy()
    group, release, workstation = os_columns(devices)
    out["os_group"] = pd.Categorical(group, categories=OS_GROUPS)
    out["os_release"] = pd.Categorical(release)
    out["workstation"] = workstation

    flag = {column: _is_set(devices[column].to_numpy()) for column in (
        "ClientInstalled", "ClientActive", "HybridAADJoined", "AADJoined", "MDMEnrolled",
        "ComgmtPolicyPresent", "EnrollmentScheduled", "PendingLogon", "EnrollmentFailed")}
    comanaged = flag["MDMEnrolled"] & flag["ComgmtPolicyPresent"]
    targeted = flag["ComgmtPolicyPresent"] | flag["MDMEnrolled"]
    joined = flag["HybridAADJoined"] | flag["AADJoined"]
    aad_only = flag["AADJoined"] & ~flag["HybridAADJoined"]
    eligible = comanaged | (flag["ClientInstalled"] & (group == W10_CURRENT) & joined)
    initiated = eligible & targeted & (
        comanaged | flag["EnrollmentFailed"] | flag["PendingLogon"] | flag["MDMEnrolled"])
    scheduled = eligible & targeted & (flag["EnrollmentScheduled"] | initiated)

    out["comanaged"] = comanaged
    out["targeted"] = targeted
    out["joined"] = joined
    out["join_type"] = pd.Categorical(np.where(aad_only, "aad", "hybrid"), categories=JOIN_TYPES)
    out["eligible"] = eligible
    out["scheduled"] = scheduled
    out["initiated"] = initiated
    out["funnel"] = pd.Categorical(
        np.select([comanaged, initiated, scheduled, eligible], list(reversed(FUNNEL_STAGES)),
                  default=None),
        categories=FUNNEL_STAGES, ordered=True)

    suffix = np.where(aad_only, "aad", "hybrid").astype(object)
    status = np.select(
        [~targeted, comanaged, flag["EnrollmentFailed"], flag["PendingLogon"]],
        [None, "success_" + suffix, "failure_" + suffix, "pending_user_sign_in"],
        default="enrolling_" + suffix,
    )
    out["enrollment_status"] = pd.Categorical(status, categories=ENROLLMENT_STATUSES)
    failed = targeted & ~comanaged & flag["EnrollmentFailed"]
    out["failed"] = failed

    not_comanaged = ~comanaged
    reason = np.select(
        [comanaged, group == SERVER, (group == W10_OLD) | (group == W7_8), group == OTHER,
         ~flag["ClientInstalled"], ~joined, ~flag["ComgmtPolicyPresent"],
         flag["EnrollmentFailed"], flag["PendingLogon"], flag["EnrollmentScheduled"]],
        [None, *REASONS[:-1]],
        default="enrolling",
    )
    out["reason"] = pd.Categorical(np.where(not_comanaged, reason, None), categories=REASONS)

    code = devices["EnrollmentStatusCode"].to_numpy(dtype=object)
    error = np.where(failed, np.where(pd.isna(code), NO_CODE, code), None)
    out["error_code"] = pd.Categorical(error)

    bits = devices["MDMWorkloads"].to_numpy(dtype=float)
    bits = np.where(np.isnan(bits), 0, bits).astype(np.int64)
    for key, (bit, _label) in WORKLOADS.items():
        is_set = (bits & bit) != 0
        stage = stages.get(key, "configmgr")
        member = pilot_members.get(key, np.zeros(len(devices), dtype=bool))
        authority = np.select(
            [~comanaged, ~is_set, (stage == "pilot") & member],
            [None, "configmgr", "pilot_intune"],
            default="intune",
        )
        out[f"wl_{key}"] = pd.Categorical(authority, categories=AUTHORITIES)
        out[f"pilot_{key}"] = member
        # In the pilot of a workload that has moved, yet the device still reports ConfigMgr.
        out[f"lag_{key}"] = comanaged & member & ~is_set & (stage in ("pilot", "intune"))
    return out

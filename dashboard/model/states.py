"""The co-management state model (docs/definitions.md §4), vectorised over the whole estate.

``classify`` takes typed device rows (``dashboard.data.contract.parse_devices``) and returns
them with the derived columns every chart, filter and rule reads. It is pure: no I/O, the
same input always gives the same output.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    10240: "1507",
    10586: "1511",
    14393: "1607",
    15063: "1703",
    16299: "1709",
    17134: "1803",
    17763: "1809",
    18362: "1903",
    18363: "1909",
    19041: "2004",
    19042: "20H2",
    19043: "21H1",
    19044: "21H2",
    19045: "22H2",
}
WINDOWS11_RELEASES = {22000: "21H2", 22621: "22H2", 22631: "23H2", 26100: "24H2", 26200: "25H2"}
WINDOWS11_FIRST_BUILD = 22000

FUNNEL_STAGES = ("eligible", "scheduled", "initiated", "enrolled")
ENROLLMENT_STATUSES = (
    "success_hybrid",
    "success_aad",
    "enrolling_hybrid",
    "enrolling_aad",
    "failure_hybrid",
    "failure_aad",
    "pending_user_sign_in",
)
REASONS = (
    "server",
    "os-too-old",
    "os-unknown",
    "no-client",
    "not-joined",
    "no-policy",
    "failed",
    "pending-sign-in",
    "scheduled",
    "enrolling",
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
    flags: np.ndarray = np.asarray(values) == 1
    return flags


def _categorical(codes: np.ndarray, categories: Sequence[str]) -> pd.Categorical:
    """A categorical straight from integer codes (-1 = missing): building one from a
    million strings costs a second each, from codes nothing."""
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int16), categories=categories)


def os_columns(devices: pd.DataFrame) -> tuple[np.ndarray, pd.Categorical, np.ndarray]:
    """(OS group code into OS_GROUPS, OS release, workstation) per device.

    ProductType decides whenever it is 1, 2 or 3; only when it is missing does the OS name.
    """
    product = devices["ProductType"].to_numpy(dtype=float)
    names, unique_names = pd.factorize(devices["OperatingSystem"], use_na_sentinel=True)
    lowered = [str(name).lower() for name in unique_names] + [""]
    by_name_ws = np.array(["workstation" in n for n in lowered])[names]
    by_name_srv = np.array(["server" in n for n in lowered])[names]
    known = ~np.isnan(product)
    workstation = np.where(known, product == 1, by_name_ws & ~by_name_srv)
    server = np.where(known, (product == 2) | (product == 3), by_name_srv)
    nt = devices["NTVersion"]
    build = devices["BuildNumber"].to_numpy(dtype=float)
    nt10 = workstation & nt.isin(["10.0"]).to_numpy()
    has_build = ~np.isnan(build)
    group = np.select(
        [
            server,
            nt10 & has_build & (build >= MIN_BUILD),
            nt10 & has_build,
            workstation & nt.isin(["6.1", "6.2", "6.3"]).to_numpy(),
        ],
        [
            OS_GROUPS.index(SERVER),
            OS_GROUPS.index(W10_CURRENT),
            OS_GROUPS.index(W10_OLD),
            OS_GROUPS.index(W7_8),
        ],
        default=OS_GROUPS.index(OTHER),
    )
    # Releases: the group's name, or for a Windows 10/11 build its release label.
    release = group.copy()
    labelled = nt10 & has_build
    codes, builds = pd.factorize(build[labelled])
    labels = [release_label(b) for b in builds]
    categories = list(OS_GROUPS) + sorted(set(labels))
    label_codes = np.array([categories.index(label) for label in labels] + [-1])
    release[labelled] = label_codes[codes]
    return group, _categorical(release, categories), workstation


def classify(
    devices: pd.DataFrame, pilot_members: dict[str, np.ndarray], stages: dict[str, str]
) -> pd.DataFrame:
    """Derive every state of §4 for each device.

    ``pilot_members`` maps a workload key to a boolean array (aligned with ``devices``) of
    membership in that workload's pilot collections, from the *full* membership whatever
    filter is shown later; ``stages`` maps a workload key to configmgr / pilot / intune.
    """
    n = len(devices)
    out = devices.copy(deep=False)  # copy-on-write: new columns, shared data
    group, release, workstation = os_columns(devices)
    out["os_group"] = _categorical(group, OS_GROUPS)
    out["os_release"] = release
    out["workstation"] = workstation

    flag = {
        column: _is_set(devices[column].to_numpy())
        for column in (
            "ClientInstalled",
            "ClientActive",
            "HybridAADJoined",
            "AADJoined",
            "MDMEnrolled",
            "ComgmtPolicyPresent",
            "EnrollmentScheduled",
            "PendingLogon",
            "EnrollmentFailed",
        )
    }
    comanaged = flag["MDMEnrolled"] & flag["ComgmtPolicyPresent"]
    targeted = flag["ComgmtPolicyPresent"] | flag["MDMEnrolled"]
    joined = flag["HybridAADJoined"] | flag["AADJoined"]
    aad_only = flag["AADJoined"] & ~flag["HybridAADJoined"]
    eligible = comanaged | (
        flag["ClientInstalled"] & (group == OS_GROUPS.index(W10_CURRENT)) & joined
    )
    initiated = (
        eligible
        & targeted
        & (comanaged | flag["EnrollmentFailed"] | flag["PendingLogon"] | flag["MDMEnrolled"])
    )
    scheduled = eligible & targeted & (flag["EnrollmentScheduled"] | initiated)

    out["comanaged"] = comanaged
    out["targeted"] = targeted
    out["joined"] = joined
    out["join_type"] = _categorical(aad_only.astype(np.int16), JOIN_TYPES)
    out["eligible"] = eligible
    out["scheduled"] = scheduled
    out["initiated"] = initiated
    out["funnel"] = _categorical(
        np.select([comanaged, initiated, scheduled, eligible], [3, 2, 1, 0], default=-1),
        FUNNEL_STAGES,
    )
    out["funnel"] = out["funnel"].cat.as_ordered()

    # Enrollment status over targeted devices, first match wins; the hybrid/aad split is
    # the status code + 1 for the Entra-joined (aad) slice.
    status_of = {key: ENROLLMENT_STATUSES.index(key) for key in ENROLLMENT_STATUSES}
    status = np.select(
        [~targeted, comanaged, flag["EnrollmentFailed"], flag["PendingLogon"]],
        [
            -1,
            status_of["success_hybrid"] + aad_only,
            status_of["failure_hybrid"] + aad_only,
            status_of["pending_user_sign_in"],
        ],
        default=status_of["enrolling_hybrid"] + aad_only,
    )
    out["enrollment_status"] = _categorical(status, ENROLLMENT_STATUSES)
    failed = targeted & ~comanaged & flag["EnrollmentFailed"]
    out["failed"] = failed

    is_group = {name: group == OS_GROUPS.index(name) for name in OS_GROUPS}
    reason = np.select(
        [
            comanaged,
            is_group[SERVER],
            is_group[W10_OLD] | is_group[W7_8],
            is_group[OTHER],
            ~flag["ClientInstalled"],
            ~joined,
            ~flag["ComgmtPolicyPresent"],
            flag["EnrollmentFailed"],
            flag["PendingLogon"],
            flag["EnrollmentScheduled"],
        ],
        [-1, *range(len(REASONS) - 1)],
        default=len(REASONS) - 1,
    )
    out["reason"] = _categorical(reason, REASONS)

    # Error codes of failed devices; a failure with no code is grouped as 0x00000000.
    codes, uniques = pd.factorize(devices["EnrollmentStatusCode"], use_na_sentinel=True)
    categories = [str(u) for u in uniques]
    if NO_CODE not in categories:
        categories.append(NO_CODE)
    error = np.where(codes >= 0, codes, categories.index(NO_CODE))
    out["error_code"] = _categorical(np.where(failed, error, -1), categories)
    out["error_code"] = out["error_code"].cat.remove_unused_categories()

    bits = devices["MDMWorkloads"].to_numpy(dtype=float)
    bits = np.where(np.isfinite(bits) & (np.abs(bits) < 2**62), bits, 0).astype(np.int64)
    no_pilot = np.zeros(n, dtype=bool)
    for key, (bit, _label) in WORKLOADS.items():
        is_set = (bits & bit) != 0
        stage = stages.get(key, "configmgr")
        member = pilot_members.get(key, no_pilot)
        authority = np.select(
            [~comanaged, ~is_set, (stage == "pilot") & member],
            [-1, AUTHORITIES.index("configmgr"), AUTHORITIES.index("pilot_intune")],
            default=AUTHORITIES.index("intune"),
        )
        out[f"wl_{key}"] = _categorical(authority, AUTHORITIES)
        out[f"pilot_{key}"] = member
        # In the pilot of a workload that has moved, yet the device still reports ConfigMgr.
        out[f"lag_{key}"] = comanaged & member & ~is_set & (stage in ("pilot", "intune"))
    return out

"""The sample estate: a plausible Configuration Manager hierarchy, generated from a seed.

:func:`generate_estate` builds, per site, the site-database views that ``queries/*.sql`` read
(docs/definitions.md §2), with their real column names and their traps: several inventory rows per
device, obsolete duplicate records, ``Obsolete0`` NULL on discovery-only records, devices with
no co-management or client-health row, NULL ``MDMWorkloads``, status codes stored signed,
high bits in the workload bitmask. The mix follows docs/definitions.md §7.

From it, :func:`write_csv` writes the CSV exports (``<SITE>/devices.csv`` and
``collections.csv``: what the queries return, written with the textual variety of real
exports), :func:`write_sqlite` writes SQLite replicas that the queries run on unchanged, and
:func:`write_config` writes the matching ``comanage.toml``. Everything is vectorised with
numpy (a million devices take seconds) and deterministic: one seed, one as-of time, the same
bytes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dashboard.data.contract import DEVICE_COLUMNS, MEMBERSHIP_COLUMNS

# --------------------------------------------------------------------------- reference data

VIEW_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    # view: ((column, SQLite type), ...); dates are 'YYYY-MM-DD HH:MM:SS.fff' text.
    "v_R_System": (
        ("ResourceID", "INTEGER"),
        ("Name0", "TEXT"),
        ("Resource_Domain_OR_Workgr0", "TEXT"),
        ("Operating_System_Name_and0", "TEXT"),
        ("Build01", "TEXT"),
        ("Client0", "INTEGER"),
        ("Client_Version0", "TEXT"),
        ("Active0", "INTEGER"),
        ("Obsolete0", "INTEGER"),
        ("AADDeviceID", "TEXT"),
    ),
    "v_GS_OPERATING_SYSTEM": (
        ("ResourceID", "INTEGER"),
        ("Caption0", "TEXT"),
        ("BuildNumber0", "TEXT"),
        ("ProductType0", "INTEGER"),
        ("TimeStamp", "TEXT"),
    ),
    "v_ClientCoManagementState": (
        ("ResourceID", "INTEGER"),
        ("MDMEnrolled", "INTEGER"),
        ("ComgmtPolicyPresent", "INTEGER"),
        ("MDMProvisioned", "INTEGER"),
        ("Authority", "INTEGER"),
        ("MDMWorkloads", "BIGINT"),
        ("HybridAADJoined", "INTEGER"),
        ("AADJoined", "INTEGER"),
        ("EnrollmentScheduled", "INTEGER"),
        ("PendingLogon", "INTEGER"),
        ("EnrollmentFailed", "INTEGER"),
        ("EnrollmentStatusCode", "BIGINT"),
        ("EnrollmentErrorDetail", "TEXT"),
    ),
    "v_CH_ClientSummary": (
        ("ResourceID", "INTEGER"),
        ("ClientActiveStatus", "INTEGER"),
        ("LastPolicyRequest", "TEXT"),
        ("LastActiveTime", "TEXT"),
        ("LastHealthEvaluationResult", "INTEGER"),
    ),
    "v_FullCollectionMembership": (("CollectionID", "TEXT"), ("ResourceID", "INTEGER")),
    "v_Collection": (("CollectionID", "TEXT"), ("Name", "TEXT")),
}

ALL_SYSTEMS = "SMS00001"
AUTO_ENROLLMENT = "CAS00100"
COLLECTIONS: tuple[tuple[str, str], ...] = (
    (ALL_SYSTEMS, "All Systems"),
    (AUTO_ENROLLMENT, "Co-management auto-enrollment"),
    ("CAS00101", "Pilot - Compliance policies"),
    ("CAS00102", "Pilot - Office Click-to-Run apps"),
    ("CAS00103", "Pilot - Client apps"),
    ("CAS00104", "Pilot - Windows Update"),
    ("CAS00110", "Workstations - London"),
    ("CAS00111", "Workstations - Manchester"),
    ("CAS00112", "Workstations - New York"),
)
LOCATION_COLLECTIONS = {"LON": "CAS00110", "MAN": "CAS00111", "NYC": "CAS00112"}
LOCATIONS = ("LON", "MAN", "NYC", "TOR", "SYD", "BER")

# Workload configuration of the sample (settings.WORKLOADS keys), docs/definitions.md §7: compliance
# moved to Intune, Office apps / client apps / Windows Update piloted, the rest ConfigMgr.
SAMPLE_WORKLOADS: dict[str, tuple[str, str | None]] = {
    "compliance_policies": ("intune", "CAS00101"),
    "office_click_to_run_apps": ("pilot", "CAS00102"),
    "client_apps": ("pilot", "CAS00103"),
    "windows_update_policies": ("pilot", "CAS00104"),
    "device_configuration": ("configmgr", None),
    "endpoint_protection": ("configmgr", None),
    "resource_access_policies": ("configmgr", None),
}

# Enrollment failures: (code, weight, EnrollmentErrorDetail). The first four lead, in this
# order (docs/definitions.md §7); the rest of the §6 catalogue follows, then codes the
# catalogue does not know (with a detail text, or none), and failures that reported no code
# (None).
FAILURE_CODES: tuple[tuple[int | None, float, str | None], ...] = (
    (0x8018002A, 20.0, None),
    (0x80180002, 14.0, None),
    (0xCAA20003, 10.0, None),
    (0x80070490, 7.0, None),
    (0x8000FFFF, 3.5, None),
    (0x8018002B, 3.5, None),
    (0xCAA10001, 3.0, None),
    (0x80180018, 2.5, None),
    (0x80180005, 2.0, None),
    (0x80180031, 2.0, None),
    (0x80180030, 2.0, None),
    (0xCAA9004D, 2.0, None),
    (0xCAA70004, 2.0, None),
    (0x801901AD, 2.0, None),
    (0xCAA90014, 1.5, None),
    (0x80192EE2, 1.5, None),
    (0x80192EE7, 1.2, None),
    (0x801C03F2, 1.2, None),
    (0xCAA9001F, 1.0, None),
    (0x80180014, 1.0, None),
    (0x80180015, 0.8, None),
    (0x82AA0008, 0.8, None),
    (0x80180023, 0.8, None),
    (0x80180026, 0.8, None),
    (0x80090016, 0.7, None),
    (0x80280036, 0.4, None),
    (0x80180003, 1.5, "The user is not authorized to enroll (device authorization error)"),
    (0x8018000A, 1.2, "The device is already enrolled, by another user or another MDM"),
    (
        0x80072EFD,
        1.2,
        "Cannot reach https://enrollment.manage.microsoft.com, check the proxy, firewall",
    ),
    (0x80190190, 0.8, "Enrollment server returned HTTP 400, bad request"),
    (0x8018001E, 0.6, "Enrollment failed.\nSee CoManagementHandler.log on the client"),
    (0x87D1B002, 0.6, None),
    (None, 3.0, None),
)
# Targeted devices that are not hybrid/Entra joined fail with join problems.
NOT_JOINED_CODES: tuple[tuple[int | None, float], ...] = (
    (0x801C03F2, 0.4),
    (0x80180002, 0.3),
    (0xCAA9001F, 0.1),
    (None, 0.2),
)
OLD_OS_CODE = 0x80070032  # auto-enrollment needs Windows 10 1709 or later

WIN11_BUILDS = (
    (22000, 0.03),
    (22621, 0.24),
    (22631, 0.44),
    (26100, 0.27),
    (22635, 0.01),
    (26120, 0.01),
)
WIN10_BUILDS = (
    (16299, 0.004),
    (17134, 0.006),
    (17763, 0.04),
    (18362, 0.006),
    (18363, 0.02),
    (19041, 0.01),
    (19042, 0.03),
    (19043, 0.02),
    (19044, 0.12),
    (19045, 0.734),
    (18995, 0.005),
    (19046, 0.005),
)
OLD_WIN10_BUILDS = ((10240, 0.22), (10586, 0.05), (14393, 0.6), (15063, 0.13))
LEGACY_OS = (((6, 1, 7601), 0.7), ((6, 3, 9600), 0.25), ((6, 2, 9200), 0.05))
SERVER_OS = (
    ((10, 0, 14393), 0.25),
    ((10, 0, 17763), 0.35),
    ((10, 0, 20348), 0.25),
    ((10, 0, 26100), 0.05),
    ((6, 3, 9600), 0.10),
)
UPGRADE_CHAIN = (
    16299,
    17134,
    17763,
    18362,
    18363,
    19041,
    19042,
    19043,
    19044,
    19045,
    22000,
    22621,
    22631,
    26100,
)
CLIENT_VERSIONS = (
    ("5.00.9128.1000", 0.55),
    ("5.00.9128.1024", 0.12),
    ("5.00.9122.1000", 0.15),
    ("5.00.9106.1000", 0.12),
    ("5.00.9088.1007", 0.06),
)
NEW_CLIENT = ("5.00.9128.1000", "5.00.9128.1024", "5.00.9122.1000")
LEGACY_CLIENT = "5.00.9058.1047"

# Device kinds and their shares (docs/definitions.md §7).
MODERN, OLD10, LEGACY, SERVER, UNKNOWN = range(5)
KIND_SHARES = (0.8855, 0.03, 0.015, 0.065, 0.0045)
# Join state of client workstations on NT 10.0.
HYBRID, ENTRA, NOT_JOINED = range(3)
JOIN_SHARES = (0.885, 0.035, 0.08)
# Enrollment outcome of devices that received the co-management policy.
SUCCESS, ENROLLING, FAILED, PENDING = range(4)
OUTCOME_SHARES = {
    HYBRID: (0.77, 0.045, 0.115, 0.07),
    ENTRA: (0.82, 0.06, 0.12, 0.0),
    NOT_JOINED: (0.0, 0.75, 0.25, 0.0),
    "old": (0.0, 0.3, 0.7, 0.0),
}

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
ORGANISATION = "Contoso (sample)"


@dataclass
class SampleEstate:
    """Per site, the raw view tables (docs/definitions.md §2 names) as DataFrames."""

    seed: int
    as_of: datetime  # timezone-aware, UTC
    sites: tuple[str, ...]
    tables: dict[str, dict[str, pd.DataFrame]]
    collections: tuple[tuple[str, str], ...] = COLLECTIONS
    workloads: dict[str, tuple[str, str | None]] = field(
        default_factory=lambda: dict(SAMPLE_WORKLOADS)
    )
    organisation: str = ORGANISATION
    windows11_share: float = 0.4
    # ResourceIDs of the records ``add_duplicates`` added, by site (none: not added).
    duplicates: dict[str, np.ndarray] = field(default_factory=dict)

    def view(self, site: str, name: str) -> pd.DataFrame:
        return self.tables[site][name]

    @property
    def devices(self) -> int:
        """Device rows the export holds (non-obsolete records), all sites together."""
        return sum(len(export_devices(self, site)) for site in self.sites)


# --------------------------------------------------------------------------- helpers


def _choice(rng: np.random.Generator, options: Sequence, n: int) -> np.ndarray:
    """Indices into ``options`` ((value, weight) pairs) drawn by weight."""
    weights = np.array([w for _, w in options], dtype=float)
    return rng.choice(len(options), size=n, p=weights / weights.sum())


def _as_utc(as_of: datetime | str) -> datetime:
    if isinstance(as_of, str):
        text = as_of.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        as_of = datetime.fromisoformat(text)
    if as_of.tzinfo is None:
        return as_of.replace(tzinfo=UTC)
    return as_of.astimezone(UTC)


def _sql_datetime(ms: np.ndarray) -> np.ndarray:
    """Round epoch milliseconds to SQL Server ``datetime`` precision (1/300 s)."""
    ticks = np.rint(ms / (1000 / 300))
    return np.rint(ticks * 10 / 3).astype(np.int64)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _guids(rng: np.random.Generator, k: int) -> np.ndarray:
    """``k`` random version-4 GUIDs, lower case, as an object array of str."""
    raw = rng.integers(0, 256, size=(k, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    nibbles = np.empty((k, 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 0x0F
    chars = _HEX[nibbles]
    out = np.full((k, 36), ord("-"), dtype=np.uint8)
    for start, end, src in ((0, 8, 0), (9, 13, 8), (14, 18, 12), (19, 23, 16), (24, 36, 20)):
        out[:, start:end] = chars[:, src : src + end - start]
    return out.view("S36").ravel().astype("U36").astype(object)


def _quota(rng: np.random.Generator, k: int, weights: Sequence[float]) -> np.ndarray:
    """``k`` option indices in shuffled order, each option's count its exact share of ``k``
    (largest remainder), so that small samples keep the ranking of the weights."""
    shares = np.asarray(weights, dtype=float) / float(sum(weights)) * k
    counts = np.floor(shares).astype(np.int64)
    remainder = k - int(counts.sum())
    if remainder:
        counts[np.argsort(-(shares - counts), kind="stable")[:remainder]] += 1
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


def _lookup(codes: np.ndarray, table: Sequence) -> np.ndarray:
    """``table[codes]`` as an object array (table may hold None)."""
    values = np.empty(len(table), dtype=object)
    values[:] = list(table)
    return values[codes]


def _int_col(values: np.ndarray, present: np.ndarray | None = None) -> pd.Series:
    """A nullable Int64 column; ``present`` False -> NULL."""
    array = pd.array(np.asarray(values, dtype=np.int64), dtype="Int64")
    if present is not None:
        array[~np.asarray(present, dtype=bool)] = pd.NA
    return pd.Series(array)


def _flag(rng: np.random.Generator, value: np.ndarray, null_share: float = 0.0) -> pd.Series:
    present = rng.random(len(value)) >= null_share if null_share else None
    return _int_col(value.astype(np.int64), present)


def _text_col(values: np.ndarray) -> pd.Series:
    """Text as an object column of str / None (cheap to build, to merge and to write)."""
    return pd.Series(np.asarray(values, dtype=object), dtype=object)


def _date_col(ms: np.ndarray, present: np.ndarray | None = None) -> pd.Series:
    stamps = np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")
    if present is not None:
        stamps = stamps.copy()
        stamps[~np.asarray(present, dtype=bool)] = np.datetime64("NaT")
    return pd.Series(stamps)


def _site_counts(devices: int, sites: int) -> np.ndarray:
    """The first site holds 64 % of the devices, the others share the rest equally."""
    if sites == 1:
        return np.array([devices])
    first = round(devices * 0.64)
    rest = devices - first
    others = np.full(sites - 1, rest // (sites - 1))
    others[: rest % (sites - 1)] += 1
    return np.concatenate([[first], others]).astype(np.int64)


# --------------------------------------------------------------------------- generation


class _Draft(SimpleNamespace):
    """An estate being generated: its arrays (one value per device record) and frames, filled
    in part by part. Every part draws from the one random generator ``rng`` in turn; the order
    of the parts, and of the draws inside each, is what makes a seed give the same estate."""


def generate_estate(
    devices: int,
    seed: int,
    as_of: datetime | str,
    sites: Sequence[str] = ("PS1", "PS2"),
    windows11_share: float = 0.4,
    duplicates: bool = False,
) -> SampleEstate:
    """A sample hierarchy of ``devices`` non-obsolete device records over ``sites``.

    ``duplicates``: also, per site, the duplicate records of ``add_duplicates`` (added after
    the rest, so every other record is the same with or without them)."""
    if devices < 0:
        raise ValueError("devices must be zero or more")
    if not 0.0 <= windows11_share <= 1.0:
        raise ValueError("windows11_share must be between 0 and 1")
    sites = tuple(str(s) for s in sites)
    if not sites or len(set(sites)) != len(sites):
        raise ValueError("sites must be distinct site codes")
    as_of = _as_utc(as_of)
    as_of_ms = int(as_of.timestamp() * 1000)
    rng = np.random.default_rng(seed)
    n = int(devices)
    d = _Draft(rng=rng, n=n, as_of_ms=as_of_ms, sites=sites, windows11_share=windows11_share)

    _who_is_who(d)
    _operating_system(d)
    _names_and_locations(d)
    _joins_and_domains(d)
    _clients(d)
    _client_health(d)
    _collections(d)
    _enrollment(d)
    _workloads(d)
    _status_codes(d)
    _obsolete_twins(d)
    _resource_ids(d)
    _system_view(d)
    _inventory_view(d)
    _comanagement_view(d)
    _health_view(d)
    _memberships(d)
    _split_by_site(d)

    estate = SampleEstate(
        seed=seed, as_of=as_of, sites=sites, tables=d.tables, windows11_share=windows11_share
    )
    if duplicates:
        add_duplicates(estate)
    return estate


def _who_is_who(d: _Draft) -> None:
    """Which site each device is in, what kind of machine it is, whether it has the
    client or was only discovered."""
    rng, n, sites = d.rng, d.n, d.sites
    site = np.repeat(np.arange(len(sites)), _site_counts(n, len(sites)))
    kind = rng.choice(len(KIND_SHARES), size=n, p=KIND_SHARES)
    workstation = kind <= LEGACY
    nt10_ws = (kind == MODERN) | (kind == OLD10)
    u = rng.random(n)
    has_client = np.where(kind == SERVER, u < 0.95, u < 0.965) & (kind != UNKNOWN)
    discovery = ~has_client & ((rng.random(n) < 0.6) | (kind == UNKNOWN))
    d.site = site
    d.kind = kind
    d.workstation = workstation
    d.nt10_ws = nt10_ws
    d.has_client = has_client
    d.discovery = discovery


def _operating_system(d: _Draft) -> None:
    """Windows version and build per device (Windows 11 for ``windows11_share`` of the
    modern ones), the OS name as discovery records it, and the build string."""
    rng, n = d.rng, d.n
    win11 = rng.random(n) < d.windows11_share
    b11 = np.array([b for b, _ in WIN11_BUILDS])[_choice(rng, WIN11_BUILDS, n)]
    b10 = np.array([b for b, _ in WIN10_BUILDS])[_choice(rng, WIN10_BUILDS, n)]
    bold = np.array([b for b, _ in OLD_WIN10_BUILDS])[_choice(rng, OLD_WIN10_BUILDS, n)]
    legacy = np.array([v for v, _ in LEGACY_OS])[_choice(rng, LEGACY_OS, n)]
    server = np.array([v for v, _ in SERVER_OS])[_choice(rng, SERVER_OS, n)]
    major = np.select(
        [d.nt10_ws, d.kind == LEGACY, d.kind == SERVER], [10, legacy[:, 0], server[:, 0]], 0
    )
    minor = np.select([d.kind == LEGACY, d.kind == SERVER], [legacy[:, 1], server[:, 1]], 0)
    build = np.select(
        [
            (d.kind == MODERN) & win11,
            d.kind == MODERN,
            d.kind == OLD10,
            d.kind == LEGACY,
            d.kind == SERVER,
        ],
        [b11, b10, bold, legacy[:, 2], server[:, 2]],
        0,
    )
    domain_controller = (d.kind == SERVER) & (rng.random(n) < 0.08)
    product_type = np.select([d.workstation, domain_controller, d.kind == SERVER], [1, 2, 3], 0)
    tablet = (d.kind == MODERN) & (rng.random(n) < 0.01)
    os_kind = np.select(
        [d.workstation & ~tablet, tablet, domain_controller, d.kind == SERVER], [0, 1, 2, 3], 4
    )
    os_templates = (
        "Microsoft Windows NT Workstation {}.{}",
        "Microsoft Windows NT Workstation {}.{} (Tablet Edition)",
        "Microsoft Windows NT Advanced Server {}.{}",
        "Microsoft Windows NT Server {}.{}",
    )
    key = os_kind * 10_000 + major * 100 + minor
    uniq, inverse = np.unique(key, return_inverse=True)
    names = [
        None if k // 10_000 == 4 else os_templates[k // 10_000].format((k // 100) % 100, k % 100)
        for k in uniq
    ]
    operating_system = _lookup(inverse, names)

    triple = major.astype(np.int64) * 10**8 + minor * 10**6 + build
    uniq, inverse = np.unique(triple, return_inverse=True)
    build01_all = _lookup(inverse, [f"{t // 10**8}.{(t // 10**6) % 100}.{t % 10**6}" for t in uniq])
    build01_null = np.where(
        d.has_client,
        rng.random(n) < 0.10,
        np.where(d.discovery, rng.random(n) < 0.5, rng.random(n) < 0.2),
    )
    build01_null |= d.kind == UNKNOWN
    build01 = np.where(build01_null, None, build01_all)
    d.major = major
    d.minor = minor
    d.build = build
    d.domain_controller = domain_controller
    d.product_type = product_type
    d.operating_system = operating_system
    d.build01 = build01


def _names_and_locations(d: _Draft) -> None:
    """Locations by site and unique names such as ``LON-LT-001004``."""
    rng, n, workstation, site, kind, sites = d.rng, d.n, d.workstation, d.site, d.kind, d.sites
    site_locations = [
        (LOCATIONS[(2 * i) % len(LOCATIONS)], LOCATIONS[(2 * i + 1) % len(LOCATIONS)])
        for i in range(len(sites))
    ]
    second = rng.random(n) < 0.35
    loc_table = np.array([[a, b] for a, b in site_locations], dtype=object)
    location = loc_table[site, second.astype(int)]
    role = np.select(
        [workstation & (rng.random(n) < 0.4), workstation, kind == SERVER, rng.random(n) < 0.6],
        ["LT", "WS", "SRV", "MAC"],
        "LNX",
    )
    group = pd.Series(location + "-" + role)
    order = rng.permutation(n)
    number = np.empty(n, dtype=np.int64)
    number[order] = group.iloc[order].groupby(group.iloc[order].to_numpy()).cumcount().to_numpy()
    number += np.where(workstation, 1001, 11)
    width = np.where(workstation, 6, 4)
    digits = pd.Series(number).astype(str)
    padded = np.where(width == 6, digits.str.zfill(6), digits.str.zfill(4))
    name = (group + "-" + padded).to_numpy(dtype=object)
    d.location = location
    d.name = name


def _joins_and_domains(d: _Draft) -> None:
    """How devices are joined (hybrid, Entra ID, not joined), their domain and Entra device ID."""
    rng, n, has_client, nt10_ws, kind = d.rng, d.n, d.has_client, d.nt10_ws, d.kind
    join = np.where(
        has_client & nt10_ws, _choice(rng, [(j, s) for j, s in enumerate(JOIN_SHARES)], n), -1
    )
    domain = _lookup(
        _choice(rng, (("CONTOSO", 0.9), ("FABRIKAM", 0.1)), n), ("CONTOSO", "FABRIKAM")
    )
    domain = np.where(join == ENTRA, "WORKGROUP", domain)
    domain = np.where((kind == UNKNOWN) & (rng.random(n) < 0.5), None, domain)
    aad_device_id = np.where((join == HYBRID) | (join == ENTRA), _guids(rng, n), None)
    d.join = join
    d.domain = domain
    d.aad_device_id = aad_device_id


def _clients(d: _Draft) -> None:
    """The Configuration Manager client version of each device with a client."""
    rng, n, has_client, minor, kind, major = d.rng, d.n, d.has_client, d.minor, d.kind, d.major
    client_version = _lookup(_choice(rng, CLIENT_VERSIONS, n), [v for v, _ in CLIENT_VERSIONS])
    client_version = np.where(
        (kind == LEGACY) & (major == 6) & (minor == 1), LEGACY_CLIENT, client_version
    )
    client_version = np.where(has_client, client_version, None)
    new_client = np.isin(client_version, NEW_CLIENT)
    d.client_version = client_version
    d.new_client = new_client


def _client_health(d: _Draft) -> None:
    """Client health: active or not, last policy request, last activity, evaluation result."""
    rng, n, has_client, as_of_ms = d.rng, d.n, d.has_client, d.as_of_ms
    has_health = has_client & (rng.random(n) < 0.985)
    active = rng.random(n) < 0.905
    policy_age = np.where(
        active,
        np.clip(rng.gamma(1.5, 8 * HOUR_MS, n), 5 * 60_000, 6 * DAY_MS),
        rng.uniform(15 * DAY_MS, 120 * DAY_MS, n),
    )
    last_policy = _sql_datetime(as_of_ms - policy_age)
    active_age = np.where(
        active,
        policy_age * rng.uniform(0.0, 0.6, n),
        np.maximum(policy_age + rng.uniform(-DAY_MS, DAY_MS, n), 14 * DAY_MS),
    )
    last_active = _sql_datetime(as_of_ms - active_age)
    policy_known = rng.random(n) >= 0.003
    health_result = _lookup(_choice(rng, ((7, 0.93), (6, 0.04), (3, 0.03)), n), (7, 6, 3))
    d.has_health = has_health
    d.active = active
    d.policy_age = policy_age
    d.last_policy = last_policy
    d.last_active = last_active
    d.policy_known = policy_known
    d.health_result = health_result


def _collections(d: _Draft) -> None:
    """Membership of the auto-enrollment collection and the workloads' pilot collections."""
    rng, n, nt10_ws, kind, join = d.rng, d.n, d.nt10_ws, d.kind, d.join
    auto_share = np.where(kind == OLD10, 0.12, np.where(join == NOT_JOINED, 0.3, 0.95))
    in_auto = nt10_ws & (rng.random(n) < auto_share)
    pilot_u = rng.random(n)
    in_office = in_auto & (pilot_u < 0.30)
    in_apps = in_auto & (pilot_u < 0.16)
    in_wu = in_auto & (pilot_u < 0.07)
    in_compliance = in_auto & (rng.random(n) < 0.05)
    d.in_auto = in_auto
    d.in_office = in_office
    d.in_apps = in_apps
    d.in_wu = in_wu
    d.in_compliance = in_compliance


def _enrollment(d: _Draft) -> None:
    """Co-management state: the policy, each enrollment's outcome, devices enrolled in
    Intune without the policy, and leftover rows."""
    rng, n = d.rng, d.n
    policy_p = np.where(d.active & d.has_health, 0.985, 0.7)
    policy = d.in_auto & d.has_client & (rng.random(n) < policy_p)
    group_index = np.select([d.kind == OLD10, d.join == ENTRA, d.join == NOT_JOINED], [3, 1, 2], 0)
    outcome = np.empty(n, dtype=np.int64)
    for index, shares in enumerate(
        (
            OUTCOME_SHARES[HYBRID],
            OUTCOME_SHARES[ENTRA],
            OUTCOME_SHARES[NOT_JOINED],
            OUTCOME_SHARES["old"],
        )
    ):
        draw = rng.choice(4, size=n, p=np.array(shares) / sum(shares))
        outcome = np.where(group_index == index, draw, outcome)
    outcome = np.where(policy, outcome, -1)
    # Enrolled in Intune directly, without the co-management policy (targeted, not comanaged).
    mdm_only = (
        ~policy
        & d.has_client
        & (d.kind == MODERN)
        & ((d.join == HYBRID) | (d.join == ENTRA))
        & (rng.random(n) < 0.004)
    )
    zero_row = (
        ~policy
        & ~mdm_only
        & d.has_client
        & np.where(d.kind == SERVER, rng.random(n) < 0.3, d.nt10_ws & (rng.random(n) < 0.45))
    )
    has_row = policy | mdm_only | zero_row
    stale_failure = zero_row & d.nt10_ws & (rng.random(n) < 0.02)

    success = outcome == SUCCESS
    failed = (outcome == FAILED) | stale_failure
    pending = outcome == PENDING
    enrolling = outcome == ENROLLING
    d.policy = policy
    d.group_index = group_index
    d.mdm_only = mdm_only
    d.has_row = has_row
    d.stale_failure = stale_failure
    d.success = success
    d.failed = failed
    d.pending = pending
    d.enrolling = enrolling


def _workloads(d: _Draft) -> None:
    """The workload bitmask of each device (which workloads Intune manages)."""
    rng, n = d.rng, d.n
    # workload bitmask
    lag = 0.06
    bits = np.ones(n, dtype=np.int64)
    bits |= np.where(rng.random(n) < 0.97, 2, 0)
    bits |= np.where(d.in_office & (rng.random(n) >= lag), 128, 0)
    bits |= np.where(d.in_apps & (rng.random(n) >= lag), 64, 0)
    bits |= np.where(d.in_wu & (rng.random(n) >= lag), 16, 0)
    bits |= np.where(d.new_client & (rng.random(n) < 0.7), 8192, 0)
    bits |= np.where(rng.random(n) < 0.12, 4096, 0)
    waiting = _lookup(_choice(rng, ((8193, 0.4), (1, 0.2), (-1, 0.4)), n), (8193, 1, -1))
    waiting = waiting.astype(np.int64)
    zero_workloads = np.where(rng.random(n) < 0.3, 0, -1)
    workloads = np.select([d.success, d.policy, d.mdm_only], [bits, waiting, -1], zero_workloads)
    d.workloads = workloads


def _status_codes(d: _Draft) -> None:
    """Enrollment status codes and error details, in exact shares (largest remainder) so
    that their ranking holds in any sample."""
    rng, n, stale_failure, failed, success, group_index = (
        d.rng,
        d.n,
        d.stale_failure,
        d.failed,
        d.success,
        d.group_index,
    )
    # status codes: exact shares (largest remainder) so that the ranking holds in any sample
    code_value = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    catalogue = failed & (group_index <= 1) | stale_failure
    for mask, options in (
        (catalogue, [(c, w, d) for c, w, d in FAILURE_CODES]),
        (failed & (group_index == 2) & ~stale_failure, [(c, w, None) for c, w in NOT_JOINED_CODES]),
        (
            failed & (group_index == 3) & ~stale_failure,
            [(OLD_OS_CODE, 0.9, None), (None, 0.1, None)],
        ),
    ):
        chosen = _quota(rng, int(mask.sum()), [w for _, w, _ in options])
        code_value[mask] = _lookup(chosen, [c for c, _, _ in options])
        detail[mask] = _lookup(chosen, [d for _, _, d in options])
    code_value = np.where(success & (rng.random(n) < 0.6), 0, code_value)
    code_present = (
        np.array([c is not None for c in code_value], dtype=bool) if n else np.zeros(0, dtype=bool)
    )
    code_number = np.where(code_present, code_value, 0).astype(np.int64)
    signed = (code_number >= 2**31) & (rng.random(n) < 0.7)
    code_number = np.where(signed, code_number - 2**32, code_number)
    d.detail = detail
    d.code_present = code_present
    d.code_number = code_number


def _obsolete_twins(d: _Draft) -> None:
    """Which devices also have an older, obsolete record (a reinstalled machine)."""
    rng, n, has_client, nt10_ws = d.rng, d.n, d.has_client, d.nt10_ws
    twin = has_client & nt10_ws & (rng.random(n) < 0.012)
    twin_of = np.flatnonzero(twin)
    t = len(twin_of)
    d.twin_of = twin_of
    d.t = t


def _resource_ids(d: _Draft) -> None:
    """ResourceIDs per site, with gaps; of a pair the obsolete record has the lower ID."""
    rng, n, site, t, sites, twin_of = d.rng, d.n, d.site, d.t, d.sites, d.twin_of
    record_site = np.concatenate([site, site[twin_of]])
    rid = np.empty(n + t, dtype=np.int64)
    for s in range(len(sites)):
        members = np.flatnonzero(record_site == s)
        gaps = 1 + np.where(rng.random(len(members)) < 0.06, rng.integers(1, 40, len(members)), 0)
        ids = 16_777_216 * (s + 1) + 4 + np.cumsum(gaps) - gaps[0]
        rid[rng.permutation(members)] = ids
    # the obsolete record is the older one: give it the lower ResourceID of the pair
    device_rid, twin_rid = rid[:n].copy(), rid[n:].copy()
    low = np.minimum(device_rid[twin_of], twin_rid)
    high = np.maximum(device_rid[twin_of], twin_rid)
    device_rid[twin_of], twin_rid = high, low
    d.record_site = record_site
    d.device_rid = device_rid
    d.twin_rid = twin_rid


def _system_view(d: _Draft) -> None:
    """``v_R_System``: one row per record, obsolete twins included."""
    rng = d.rng
    obsolete = np.where(d.discovery, -1, 0)
    client0 = np.where(d.has_client, 1, np.where(d.discovery, -1, 0))
    active0 = np.where(
        d.has_client, (d.active & d.has_health).astype(np.int64), np.where(d.discovery, -1, 0)
    )
    twin_versions = _lookup(rng.integers(0, 2, d.t), ("5.00.9088.1007", "5.00.9078.1006"))
    older = np.searchsorted(UPGRADE_CHAIN, d.build[d.twin_of])
    chain_known = (older < len(UPGRADE_CHAIN)) & (
        np.asarray(UPGRADE_CHAIN)[np.minimum(older, len(UPGRADE_CHAIN) - 1)] == d.build[d.twin_of]
    )
    twin_build = np.where(
        chain_known & (older > 0),
        np.asarray(UPGRADE_CHAIN)[np.clip(older - 1, 0, len(UPGRADE_CHAIN) - 1)],
        d.build[d.twin_of],
    )
    twin_build01 = np.array([f"10.0.{b}" for b in twin_build], dtype=object)
    twin_aad = np.where(rng.random(d.t) < 0.5, _guids(rng, d.t), None)

    system = pd.DataFrame(
        {
            "ResourceID": np.concatenate([d.device_rid, d.twin_rid]),
            "Name0": _text_col(np.concatenate([d.name, d.name[d.twin_of]])),
            "Resource_Domain_OR_Workgr0": _text_col(
                np.concatenate([d.domain, d.domain[d.twin_of]])
            ),
            "Operating_System_Name_and0": _text_col(
                np.concatenate([d.operating_system, d.operating_system[d.twin_of]])
            ),
            "Build01": _text_col(np.concatenate([d.build01, twin_build01])),
            "Client0": _int_col(
                np.concatenate([client0, np.ones(d.t, np.int64)]),
                np.concatenate([client0 >= 0, np.ones(d.t, bool)]),
            ),
            "Client_Version0": _text_col(np.concatenate([d.client_version, twin_versions])),
            "Active0": _int_col(
                np.concatenate([active0, np.zeros(d.t, np.int64)]),
                np.concatenate([active0 >= 0, np.ones(d.t, bool)]),
            ),
            "Obsolete0": _int_col(
                np.concatenate([obsolete, np.ones(d.t, np.int64)]),
                np.concatenate([obsolete >= 0, np.ones(d.t, bool)]),
            ),
            "AADDeviceID": _text_col(np.concatenate([d.aad_device_id, twin_aad])),
        }
    )
    d.twin_build = twin_build
    d.system = system


def _inventory_view(d: _Draft) -> None:
    """``v_GS_OPERATING_SYSTEM``: 1-3 hardware inventory rows per inventoried device, the
    older ones with the builds the device had before its upgrades."""
    rng, n = d.rng, d.n
    # hardware inventory: 1-3 rows per inventoried device, newest first in time only
    has_inventory = d.has_client & (rng.random(n) < 0.97)
    inv_devices = np.flatnonzero(has_inventory)
    rows_per = 1 + (rng.random(len(inv_devices)) > 0.6) + (rng.random(len(inv_devices)) > 0.9)
    inv_of = np.repeat(inv_devices, rows_per)
    starts = np.repeat(np.cumsum(rows_per) - rows_per, rows_per)
    rank = np.arange(len(inv_of)) - starts
    newest_age = np.where(
        d.active[inv_of],
        rng.uniform(0.1 * DAY_MS, 7 * DAY_MS, len(inv_of)),
        d.policy_age[inv_of] + rng.uniform(0, 3 * DAY_MS, len(inv_of)),
    )
    step = rng.uniform(30 * DAY_MS, 55 * DAY_MS, len(inv_of))
    inv_stamp = _sql_datetime(d.as_of_ms - newest_age - rank * step)
    inv_build = d.build[inv_of]
    position = np.searchsorted(UPGRADE_CHAIN, inv_build)
    in_chain = (position < len(UPGRADE_CHAIN)) & (
        np.asarray(UPGRADE_CHAIN)[np.minimum(position, len(UPGRADE_CHAIN) - 1)] == inv_build
    )
    chain = np.asarray(UPGRADE_CHAIN)
    inv_build = np.where(
        in_chain & (d.kind[inv_of] != SERVER),
        chain[np.clip(position - rank, 0, len(chain) - 1)],
        inv_build,
    )
    # obsolete records keep one old inventory row each
    twin_stamp = _sql_datetime(d.as_of_ms - rng.uniform(120 * DAY_MS, 400 * DAY_MS, d.t))
    inventory = pd.DataFrame(
        {
            "ResourceID": np.concatenate([d.device_rid[inv_of], d.twin_rid]),
            "Caption0": _text_col(
                np.concatenate(
                    [
                        _captions(
                            d.kind[inv_of],
                            d.major[inv_of],
                            d.minor[inv_of],
                            inv_build,
                            d.domain_controller[inv_of],
                        ),
                        _captions(
                            d.kind[d.twin_of],
                            d.major[d.twin_of],
                            d.minor[d.twin_of],
                            d.twin_build,
                            d.domain_controller[d.twin_of],
                        ),
                    ]
                )
            ),
            "BuildNumber0": _text_col(
                np.concatenate([inv_build, d.twin_build]).astype(str).astype(object)
            ),
            "ProductType0": np.concatenate([d.product_type[inv_of], d.product_type[d.twin_of]]),
            "TimeStamp": _date_col(np.concatenate([inv_stamp, twin_stamp])),
        }
    )
    inventory = inventory.iloc[rng.permutation(len(inventory))].reset_index(drop=True)
    d.inventory = inventory


def _comanagement_view(d: _Draft) -> None:
    """``v_ClientCoManagementState``: the co-management rows."""
    rng = d.rng
    # co-management rows
    cm = np.flatnonzero(d.has_row)
    joined_known = d.join[cm] >= 0
    twin_cm = d.twin_of[rng.random(d.t) < 0.5]
    comanaged_flag = d.success | d.mdm_only
    comgmt = pd.DataFrame(
        {
            "ResourceID": np.concatenate(
                [d.device_rid[cm], _twin_rids(d.twin_rid, d.twin_of, twin_cm)]
            ),
            "MDMEnrolled": _int_col(np.concatenate([comanaged_flag[cm], np.ones(len(twin_cm))])),
            "ComgmtPolicyPresent": _int_col(np.concatenate([d.policy[cm], np.ones(len(twin_cm))])),
            "MDMProvisioned": _int_col(
                np.concatenate(
                    [d.success[cm] & (rng.random(len(cm)) < 0.96), np.ones(len(twin_cm))]
                ),
                np.concatenate(
                    [d.success[cm] | (rng.random(len(cm)) >= 0.1), np.ones(len(twin_cm), bool)]
                ),
            ),
            "Authority": _int_col(np.concatenate([comanaged_flag[cm], np.ones(len(twin_cm))])),
            "MDMWorkloads": _int_col(
                np.concatenate([d.workloads[cm], np.full(len(twin_cm), 8195)]),
                np.concatenate([d.workloads[cm] >= 0, np.ones(len(twin_cm), bool)]),
            ),
            "HybridAADJoined": _int_col(
                np.concatenate([d.join[cm] == HYBRID, np.ones(len(twin_cm))]),
                np.concatenate(
                    [joined_known | (rng.random(len(cm)) < 0.5), np.ones(len(twin_cm), bool)]
                ),
            ),
            "AADJoined": _int_col(
                np.concatenate([d.join[cm] == ENTRA, np.zeros(len(twin_cm))]),
                np.concatenate(
                    [joined_known | (rng.random(len(cm)) < 0.5), np.ones(len(twin_cm), bool)]
                ),
            ),
            "EnrollmentScheduled": _int_col(
                np.concatenate(
                    [
                        np.select(
                            [d.success[cm], d.enrolling[cm], d.policy[cm]],
                            [rng.random(len(cm)) < 0.7, rng.random(len(cm)) < 0.8, True],
                            False,
                        ),
                        np.zeros(len(twin_cm)),
                    ]
                ),
                np.concatenate(
                    [d.policy[cm] | (rng.random(len(cm)) < 0.5), np.ones(len(twin_cm), bool)]
                ),
            ),
            "PendingLogon": _int_col(
                np.concatenate([d.pending[cm], np.zeros(len(twin_cm))]),
                np.concatenate(
                    [
                        d.policy[cm] | d.mdm_only[cm] | (rng.random(len(cm)) < 0.5),
                        np.ones(len(twin_cm), bool),
                    ]
                ),
            ),
            "EnrollmentFailed": _int_col(
                np.concatenate([d.failed[cm], np.zeros(len(twin_cm))]),
                np.concatenate(
                    [
                        d.policy[cm]
                        | d.mdm_only[cm]
                        | d.stale_failure[cm]
                        | (rng.random(len(cm)) < 0.5),
                        np.ones(len(twin_cm), bool),
                    ]
                ),
            ),
            "EnrollmentStatusCode": _int_col(
                np.concatenate([d.code_number[cm], np.zeros(len(twin_cm))]),
                np.concatenate([d.code_present[cm], np.ones(len(twin_cm), bool)]),
            ),
            "EnrollmentErrorDetail": _text_col(
                np.concatenate([d.detail[cm], np.full(len(twin_cm), None, dtype=object)])
            ),
        }
    )
    d.comgmt = comgmt


def _health_view(d: _Draft) -> None:
    """``v_CH_ClientSummary``: the client health rows."""
    rng = d.rng
    # client health rows
    ch = np.flatnonzero(d.has_health)
    twin_ch_age = rng.uniform(60 * DAY_MS, 300 * DAY_MS, d.t)
    health = pd.DataFrame(
        {
            "ResourceID": np.concatenate([d.device_rid[ch], d.twin_rid]),
            "ClientActiveStatus": _int_col(np.concatenate([d.active[ch], np.zeros(d.t)])),
            "LastPolicyRequest": _date_col(
                np.concatenate([d.last_policy[ch], _sql_datetime(d.as_of_ms - twin_ch_age)]),
                np.concatenate([d.policy_known[ch], np.ones(d.t, bool)]),
            ),
            "LastActiveTime": _date_col(
                np.concatenate(
                    [d.last_active[ch], _sql_datetime(d.as_of_ms - twin_ch_age - HOUR_MS)]
                )
            ),
            "LastHealthEvaluationResult": _int_col(
                np.concatenate([d.health_result[ch].astype(np.int64), np.full(d.t, 7)])
            ),
        }
    )
    d.health = health


def _memberships(d: _Draft) -> None:
    """Collection members (non-obsolete records only), by collection ID."""
    n = d.n
    # memberships (non-obsolete records only; ResourceIDs of the record's own site)
    members = {
        ALL_SYSTEMS: np.ones(n, dtype=bool),
        AUTO_ENROLLMENT: d.in_auto,
        "CAS00101": d.in_compliance,
        "CAS00102": d.in_office,
        "CAS00103": d.in_apps,
        "CAS00104": d.in_wu,
    }
    for loc, collection_id in LOCATION_COLLECTIONS.items():
        members[collection_id] = d.workstation & (d.location == loc)
    d.members = members


def _split_by_site(d: _Draft) -> None:
    """The views of each site: its records, collection memberships and the collections."""
    rid_site = pd.Series(d.record_site, index=np.concatenate([d.device_rid, d.twin_rid]))
    tables: dict[str, dict[str, pd.DataFrame]] = {}
    collection_frame = pd.DataFrame(
        {
            "CollectionID": _text_col(np.array([c for c, _ in COLLECTIONS], dtype=object)),
            "Name": _text_col(np.array([nm for _, nm in COLLECTIONS], dtype=object)),
        }
    )
    for s, code in enumerate(d.sites):
        views: dict[str, pd.DataFrame] = {}
        for view, frame in (
            ("v_R_System", d.system),
            ("v_GS_OPERATING_SYSTEM", d.inventory),
            ("v_ClientCoManagementState", d.comgmt),
            ("v_CH_ClientSummary", d.health),
        ):
            mine = rid_site.reindex(frame["ResourceID"].to_numpy()).to_numpy() == s
            part = frame.loc[mine].reset_index(drop=True)
            if view != "v_GS_OPERATING_SYSTEM":
                part = part.sort_values("ResourceID", kind="stable").reset_index(drop=True)
            views[view] = part
        parts = []
        for collection_id, _ in COLLECTIONS:
            chosen = d.members[collection_id] & (d.site == s)
            ids = np.sort(d.device_rid[chosen])
            parts.append(
                pd.DataFrame(
                    {
                        "CollectionID": _text_col(np.full(len(ids), collection_id, dtype=object)),
                        "ResourceID": ids,
                    }
                )
            )
        views["v_FullCollectionMembership"] = pd.concat(parts, ignore_index=True)
        views["v_Collection"] = collection_frame.copy()
        tables[code] = views
    d.tables = tables


# Names other tests and the documentation show: never given a duplicate.
_KEEP_UNIQUE = frozenset({"NYC-LT-001004", "LON-LT-001019", "LON-LNX-0011", "LON-MAC-0016"})


def add_duplicates(estate: SampleEstate) -> None:
    """Add, per site, three non-obsolete records for machines that already have one, as real
    site databases hold them (the ``duplicate-record`` rule finds them):

    - a discovery-only record (no client, ``Obsolete0`` NULL, no inventory) whose name is the
      client record's in lower case;
    - the old client record of a re-imaged machine: same name, an older build and client,
      inactive, its last policy request 40 to 90 days old;
    - another re-imaged machine's old client record that has no client-health row (no last
      policy request at all).

    Drawn from their own random stream with new, higher ResourceIDs, so that the records of
    ``generate_estate`` are the same with or without them. The kept records are the
    originals (client installed, newest policy request).
    """
    rng = np.random.default_rng([estate.seed, 0xD0B1E])
    as_of_ms = int(estate.as_of.timestamp() * 1000)
    estate.duplicates = {}
    for site in estate.sites:
        views = estate.tables[site]
        system, health = views["v_R_System"], views["v_CH_ClientSummary"]
        recent = health.loc[
            (health["ClientActiveStatus"] == 1)
            & (health["LastPolicyRequest"] > pd.Timestamp(as_of_ms - 7 * DAY_MS, unit="ms")),
            "ResourceID",
        ]
        candidates = system.loc[
            (system["Client0"] == 1)
            & (system["Obsolete0"] == 0)
            & system["Operating_System_Name_and0"].fillna("").str.contains("Workstation 10.0")
            & system["Build01"].notna()
            & system["ResourceID"].isin(recent)
            # domain members: Active Directory discovery finds them (not workgroup devices)
            & system["Resource_Domain_OR_Workgr0"].isin(["CONTOSO", "FABRIKAM"])
            & ~system["Name0"].isin(_KEEP_UNIQUE)
        ]
        if len(candidates) < 3:
            continue
        chosen = candidates.iloc[np.sort(rng.choice(len(candidates), 3, replace=False))]
        gaps = rng.integers(1, 40, 3)
        ids = int(system["ResourceID"].max()) + np.cumsum(gaps)
        builds = chosen["Build01"].str.rsplit(".", n=1).str[-1].astype(int).to_numpy()
        older = [
            UPGRADE_CHAIN[max(0, UPGRADE_CHAIN.index(b) - 2)] if b in UPGRADE_CHAIN else b
            for b in builds
        ]
        names = chosen["Name0"].to_numpy(dtype=object).copy()
        names[0] = names[0].lower()
        records = pd.DataFrame(
            {
                "ResourceID": ids,
                "Name0": _text_col(names),
                "Resource_Domain_OR_Workgr0": _text_col(
                    chosen["Resource_Domain_OR_Workgr0"].to_numpy(dtype=object)
                ),
                "Operating_System_Name_and0": _text_col(
                    chosen["Operating_System_Name_and0"].to_numpy(dtype=object)
                ),
                "Build01": _text_col(
                    np.array([None] + [f"10.0.{b}" for b in older[1:]], dtype=object)
                ),
                "Client0": _int_col([0, 1, 1], [False, True, True]),
                "Client_Version0": _text_col(
                    np.array([None, "5.00.9088.1007", "5.00.9106.1000"], dtype=object)
                ),
                "Active0": _int_col([0, 0, 0], [False, True, True]),
                "Obsolete0": _int_col([0, 0, 0], [False, True, True]),
                "AADDeviceID": _text_col(np.concatenate([[None], _guids(rng, 2)])),
            }
        )
        stamps = _sql_datetime(as_of_ms - rng.uniform(40 * DAY_MS, 90 * DAY_MS, 1))
        views["v_R_System"] = _appended(system, records)
        views["v_GS_OPERATING_SYSTEM"] = _appended(
            views["v_GS_OPERATING_SYSTEM"],
            pd.DataFrame(
                {
                    "ResourceID": ids[1:],
                    "Caption0": _text_col(
                        np.array(
                            [
                                "Microsoft Windows 10 Enterprise"
                                if b < 22000
                                else "Microsoft Windows 11 Enterprise"
                                for b in older[1:]
                            ],
                            dtype=object,
                        )
                    ),
                    "BuildNumber0": _text_col(np.array([str(b) for b in older[1:]], dtype=object)),
                    "ProductType0": np.ones(2, dtype=np.int64),
                    "TimeStamp": _date_col(
                        _sql_datetime(as_of_ms - rng.uniform(90 * DAY_MS, 200 * DAY_MS, 2))
                    ),
                }
            ),
        )
        views["v_CH_ClientSummary"] = _appended(
            health,
            pd.DataFrame(
                {
                    "ResourceID": ids[1:2],
                    "ClientActiveStatus": _int_col([0]),
                    "LastPolicyRequest": _date_col(stamps),
                    "LastActiveTime": _date_col(stamps - HOUR_MS),
                    "LastHealthEvaluationResult": _int_col([7]),
                }
            ),
        )
        views["v_FullCollectionMembership"] = _appended(
            views["v_FullCollectionMembership"],
            pd.DataFrame(
                {
                    "CollectionID": _text_col(np.full(3, ALL_SYSTEMS, dtype=object)),
                    "ResourceID": ids,
                }
            ),
        )
        estate.duplicates[site] = ids


def _appended(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` after ``frame``, in ``frame``'s column types."""
    rows = rows[list(frame.columns)].astype(frame.dtypes.to_dict())
    return pd.concat([frame, rows], ignore_index=True)


def _twin_rids(twin_rid: np.ndarray, twin_of: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """ResourceIDs of the obsolete records whose original device is in ``chosen``."""
    position = np.searchsorted(twin_of, chosen)
    return twin_rid[position]


def _captions(kind, major, minor, build, domain_controller) -> np.ndarray:
    """Hardware-inventory ``Caption0`` for each row."""
    key = (
        kind.astype(np.int64) * 10**9 + major * 10**7 + minor * 10**5 + build
    ) * 2 + domain_controller.astype(np.int64)
    uniq, inverse = np.unique(key, return_inverse=True)
    labels = []
    for value in uniq:
        dc = bool(value % 2)
        value //= 2
        k, ma, mi, b = (
            value // 10**9,
            (value // 10**7) % 100,
            (value // 10**5) % 100,
            value % 10**5,
        )
        labels.append(_caption(int(k), int(ma), int(mi), int(b), dc))
    return _lookup(inverse, labels)


def _caption(kind: int, major: int, minor: int, build: int, dc: bool) -> str:
    if kind == SERVER:
        name = {14393: "2016", 17763: "2019", 20348: "2022", 26100: "2025", 9600: "2012 R2"}.get(
            build, ""
        )
        return f"Microsoft Windows Server {name} {'Datacenter' if dc else 'Standard'}".replace(
            "  ", " "
        )
    if (major, minor) == (6, 1):
        return "Microsoft Windows 7 Enterprise"
    if (major, minor) == (6, 2):
        return "Microsoft Windows 8 Enterprise"
    if (major, minor) == (6, 3):
        return "Microsoft Windows 8.1 Enterprise"
    if build >= 22000:
        return "Microsoft Windows 11 Enterprise"
    if build in (10240, 14393, 17763):
        return (
            "Microsoft Windows 10 Enterprise LTSC"
            if build == 17763
            else "Microsoft Windows 10 Enterprise 2016 LTSB"
        )
    return "Microsoft Windows 10 Enterprise"


# --------------------------------------------------------------------------- the export


def export_devices(estate: SampleEstate, site: str) -> pd.DataFrame:
    """What ``queries/devices.sql`` returns from the site's views, as typed values."""
    views = estate.tables[site]
    system = views["v_R_System"]
    system = system.loc[system["Obsolete0"].fillna(0) != 1]
    inventory = views["v_GS_OPERATING_SYSTEM"].sort_values(
        ["ResourceID", "TimeStamp"], ascending=[True, False], kind="stable"
    )
    inventory = inventory.drop_duplicates("ResourceID")[
        ["ResourceID", "BuildNumber0", "ProductType0"]
    ]
    frame = (
        system.merge(inventory, on="ResourceID", how="left")
        .merge(views["v_ClientCoManagementState"], on="ResourceID", how="left")
        .merge(views["v_CH_ClientSummary"], on="ResourceID", how="left")
    )
    out = pd.DataFrame(
        {
            "ResourceID": frame["ResourceID"].astype(np.int64),
            "Name": frame["Name0"],
            "Domain": frame["Resource_Domain_OR_Workgr0"],
            "OperatingSystem": frame["Operating_System_Name_and0"],
            "Build": frame["Build01"].fillna(frame["BuildNumber0"]),
            "ProductType": frame["ProductType0"].astype("Int64"),
            "ClientInstalled": frame["Client0"],
            "ClientVersion": frame["Client_Version0"],
            "ClientActive": frame["ClientActiveStatus"],
            "LastPolicyRequest": frame["LastPolicyRequest"],
            "LastActiveTime": frame["LastActiveTime"],
            "AADDeviceID": frame["AADDeviceID"],
            **{
                c: frame[c]
                for c in (
                    "HybridAADJoined",
                    "AADJoined",
                    "MDMEnrolled",
                    "ComgmtPolicyPresent",
                    "MDMProvisioned",
                    "EnrollmentScheduled",
                    "PendingLogon",
                    "EnrollmentFailed",
                    "EnrollmentStatusCode",
                    "EnrollmentErrorDetail",
                    "MDMWorkloads",
                )
            },
        }
    )
    return out.sort_values("ResourceID", kind="stable").reset_index(drop=True)[list(DEVICE_COLUMNS)]


def export_memberships(
    estate: SampleEstate, site: str, collection_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """What ``queries/collections.sql`` returns, run once per collection ID (in that order,
    each collection's rows by ``ResourceID``)."""
    views = estate.tables[site]
    ids = list(
        dict.fromkeys(
            [c for c, _ in estate.collections] if collection_ids is None else collection_ids
        )
    )
    membership = views["v_FullCollectionMembership"]
    known = dict(
        zip(views["v_Collection"]["CollectionID"], views["v_Collection"]["Name"], strict=True)
    )
    ids = [c for c in ids if c in known]  # the JOIN on v_Collection
    codes = (
        pd.Categorical(membership["CollectionID"].to_numpy(dtype=object), categories=ids).codes
        if ids
        else np.full(len(membership), -1)
    )
    keep = codes >= 0
    rid = membership["ResourceID"].to_numpy(dtype=np.int64)[keep]
    codes = codes[keep]
    order = np.lexsort((rid, codes))
    return pd.DataFrame(
        {
            "ResourceID": rid[order],
            "CollectionID": _text_col(_lookup(codes[order], ids)),
            "CollectionName": _text_col(_lookup(codes[order], [known[c] for c in ids])),
        }
    )


# --------------------------------------------------------------------------- CSV


@dataclass(frozen=True)
class _Style:
    """How one site's export tool writes values (SSMS-like or PowerShell-like)."""

    null: str
    other_null: str
    true: str
    false: str
    other_true: str
    other_false: str
    date_separator: str
    hex_share: float
    encoding: str
    quote_all: bool
    first_columns: tuple[str, ...]


_STYLES = (
    _Style(
        null="NULL",
        other_null="",
        true="1",
        false="0",
        other_true="True",
        other_false="False",
        date_separator=" ",
        hex_share=0.15,
        encoding="utf-8",
        quote_all=False,
        first_columns=(),
    ),
    _Style(
        null="",
        other_null="NULL",
        true="True",
        false="False",
        other_true="1",
        other_false="0",
        date_separator="T",
        hex_share=0.35,
        encoding="utf-8-sig",
        quote_all=True,
        first_columns=("Name", "ResourceID"),
    ),
)
_FLAG_COLUMNS = (
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


def _missing_tokens(rng: np.random.Generator, style: _Style, missing: np.ndarray) -> pa.Array:
    """The text of each cell that is NULL: the style's token, now and then the other one."""
    other = rng.random(len(missing)) < 0.05
    return pc.take(pa.array([style.null, style.other_null]), pa.array(other.astype(np.int8)))


def _fill(values: pa.Array, missing: np.ndarray, tokens: pa.Array) -> pa.Array:
    if not missing.any():
        return values
    return pc.if_else(pa.array(missing), tokens, values)


def _stamp_text(series: pd.Series, separator: str) -> tuple[pa.Array, np.ndarray]:
    """Datetimes as ``YYYY-MM-DD HH:MM:SS.fff`` (or with ``T``) and the NaT mask."""
    stamps = series.to_numpy(dtype="datetime64[ms]")
    missing = np.isnat(stamps)
    text = np.datetime_as_string(stamps, unit="ms").astype("S23")
    chars = text.view(np.uint8).reshape(len(text), 23)
    chars[~missing, 10] = ord(separator)
    offsets = np.arange(0, 23 * (len(text) + 1), 23, dtype=np.int32)
    values = pa.StringArray.from_buffers(
        len(text), pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())
    )
    return values, missing


def format_devices(
    frame: pd.DataFrame, style_index: int, seed: int, stream: int = 1
) -> dict[str, pa.Array]:
    """The export's typed values as the text an export tool writes: per column, a pyarrow
    string array with no nulls (NULL cells hold the style's token). ``stream`` picks the
    random stream of the textual variety."""
    style = _STYLES[style_index % len(_STYLES)]
    rng = np.random.default_rng([seed, style_index, stream])
    n = len(frame)
    out: dict[str, pa.Array] = {}
    for column in DEVICE_COLUMNS:
        series = frame[column]
        if column in ("LastPolicyRequest", "LastActiveTime"):
            values, missing = _stamp_text(series, style.date_separator)
        elif series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            values = pa.array(series.to_numpy(), type=pa.string(), from_pandas=True)
            missing = values.is_null().to_numpy(zero_copy_only=False)
            values = values.fill_null("")
        else:
            missing = series.isna().to_numpy()
            numbers = series.fillna(0).to_numpy(dtype=np.int64)
            if column in _FLAG_COLUMNS:
                other = rng.random(n) < 0.08
                index = np.where(numbers == 1, 0, 1) + 2 * other
                words = pa.array([style.true, style.false, style.other_true, style.other_false])
                values = pc.take(words, pa.array(index.astype(np.int8)))
            elif column == "EnrollmentStatusCode":
                codes, uniques = pd.factorize(numbers)
                texts = (
                    [f"0x{int(v) & 0xFFFFFFFF:08X}" for v in uniques]
                    + [f"0x{int(v) & 0xFFFFFFFF:08x}" for v in uniques]
                    + [str(int(v)) for v in uniques]
                )
                u = rng.random(n)
                form = np.where(u < style.hex_share * 0.8, 0, np.where(u < style.hex_share, 1, 2))
                values = pc.take(
                    pa.array(texts, type=pa.string()), pa.array(form * len(uniques) + codes)
                )
            else:
                values = pc.cast(pa.array(numbers), pa.string())
        out[column] = _fill(values, missing, _missing_tokens(rng, style, missing))
    return out


def _column_order(style: _Style) -> list[str]:
    first = [c for c in style.first_columns if c in DEVICE_COLUMNS]
    return first + [c for c in DEVICE_COLUMNS if c not in first]


def write_csv(estate: SampleEstate, out_dir: str | Path) -> dict[str, Path]:
    """Per site, ``out_dir/<SITE>/devices.csv`` and ``collections.csv``; returns the folders.

    The values are exactly what the queries return from the site's views; the text varies
    the way real exports do (SSMS-like for the first site: 1/0, ``NULL``, ``2026-11-20
    13:45:12.347``, quoted only where needed; PowerShell ``Export-Csv``-like for the second:
    every field quoted, True/False, empty, ISO 8601 with ``T``, a UTF-8 byte-order mark,
    ``Name`` before ``ResourceID``); status codes in signed decimal or hex; a few cells in
    the other style.
    """
    out_dir = Path(out_dir)
    folders = {}
    for index, site in enumerate(estate.sites):
        folder = out_dir / site
        folder.mkdir(parents=True, exist_ok=True)
        style = _STYLES[index % len(_STYLES)]
        cells = _site_cells(estate, site, index)
        columns = _column_order(style)
        _write_rows(
            folder / "devices.csv",
            columns,
            [cells[c] for c in columns],
            style.encoding,
            style.quote_all,
        )
        members = export_memberships(estate, site)
        _write_rows(
            folder / "collections.csv",
            list(MEMBERSHIP_COLUMNS),
            [
                pc.cast(pa.array(members["ResourceID"].to_numpy()), pa.string()),
                pa.array(members["CollectionID"].to_numpy(dtype=object), pa.string()),
                pa.array(members["CollectionName"].to_numpy(dtype=object), pa.string()),
            ],
            style.encoding,
            style.quote_all,
        )
        folders[site] = folder
    return folders


def _site_cells(estate: SampleEstate, site: str, index: int) -> dict[str, pa.Array]:
    """``format_devices`` of the site's export; the duplicate records added after the
    generation are written from a stream of their own, so the other rows' text is the same
    with or without them."""
    export = export_devices(estate, site)
    extra = export["ResourceID"].isin(estate.duplicates.get(site, [])).to_numpy()
    if not extra.any():
        return format_devices(export, index, estate.seed)
    main = format_devices(export.loc[~extra], index, estate.seed)
    more = format_devices(export.loc[extra], index, estate.seed, stream=2)
    # Back to the export's order (by ResourceID): row i of the concatenation is row order[i].
    order = np.concatenate([np.flatnonzero(~extra), np.flatnonzero(extra)])
    back = pa.array(np.argsort(order, kind="stable"))
    return {column: pa.concat_arrays([main[column], more[column]]).take(back) for column in main}


_SAFE_COLUMNS = frozenset(DEVICE_COLUMNS) - {
    "Name",
    "Domain",
    "OperatingSystem",
    "Build",
    "ClientVersion",
    "AADDeviceID",
    "EnrollmentErrorDetail",
    "CollectionName",
}


def _write_rows(
    path: Path, header: list[str], columns: list[pa.Array], encoding: str, quote_all: bool = False
) -> None:
    """Write CSV rows (CRLF), quoting the fields that need it, or every field (``quote_all``,
    like Windows PowerShell's ``Export-Csv``). Vectorised with pyarrow, in chunks."""
    temporary = path.with_name(path.name + ".tmp")
    n = len(columns[0]) if columns else 0
    safe = [name in _SAFE_COLUMNS or name == "CollectionID" for name in header]
    chunk = 250_000
    with temporary.open("wb") as handle:
        if encoding == "utf-8-sig":
            handle.write(b"\xef\xbb\xbf")
        names = _csv_fields([pa.array(header, type=pa.string())], quote_all, [False])[0]
        handle.write((",".join(names.to_pylist()) + "\r\n").encode("utf-8"))
        for start in range(0, n, chunk):
            part = [c.slice(start, chunk) for c in columns]
            fields = _csv_fields(part, quote_all, safe)
            lines = pc.binary_join_element_wise(
                pc.binary_join_element_wise(*fields, ","), "\r\n", ""
            )
            # The rows' text lies back to back in the array's data buffer: write it as is.
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
            first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
            handle.write(memoryview(lines.buffers()[2])[first:last])
    os.replace(temporary, path)


def _csv_fields(columns: list[pa.Array], quote_all: bool, safe: list[bool]) -> list[pa.Array]:
    fields = []
    for column, is_safe in zip(columns, safe, strict=True):
        if is_safe and not quote_all:
            fields.append(column)
            continue
        escaped = column if is_safe else pc.replace_substring(column, '"', '""')
        quoted = pc.binary_join_element_wise('"', escaped, '"', "")
        if quote_all:
            fields.append(quoted)
        else:
            fields.append(pc.if_else(pc.match_substring_regex(column, '[,"\r\n]'), quoted, column))
    return fields


# --------------------------------------------------------------------------- SQLite


def sqlite_paths(estate: SampleEstate, path: str | Path) -> dict[str, Path]:
    """Where :func:`write_sqlite` puts each site's file (``{site}`` substituted, or
    ``-<SITE>`` before the suffix when there are several sites)."""
    text = str(path)
    if "{site}" in text:
        return {site: Path(text.replace("{site}", site)) for site in estate.sites}
    path = Path(text)
    if len(estate.sites) == 1:
        return {estate.sites[0]: path}
    return {site: path.with_name(f"{path.stem}-{site}{path.suffix}") for site in estate.sites}


def _sql_values(series: pd.Series) -> list:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = series.to_numpy(dtype="datetime64[ms]")
        missing = np.isnat(stamps)
        text = np.datetime_as_string(stamps, unit="ms")
        if len(text):
            chars = text.view(np.uint32).reshape(len(text), -1)
            chars[~missing, 10] = ord(" ")
        return np.where(missing, None, text.astype(object)).tolist()
    if pd.api.types.is_integer_dtype(series.dtype):
        if isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
            return series.to_numpy(dtype=object, na_value=None).tolist()
        return series.to_numpy().tolist()
    return series.to_numpy(dtype=object, na_value=None).tolist()


_ONE_ROW_PER_DEVICE = frozenset({"v_R_System", "v_ClientCoManagementState", "v_CH_ClientSummary"})
_INDEXES = (
    "CREATE INDEX ix_v_GS_OPERATING_SYSTEM_ResourceID "
    "ON v_GS_OPERATING_SYSTEM (ResourceID, TimeStamp)",
    "CREATE INDEX ix_v_FullCollectionMembership_CollectionID "
    "ON v_FullCollectionMembership (CollectionID, ResourceID)",
    "CREATE INDEX ix_v_FullCollectionMembership_ResourceID "
    "ON v_FullCollectionMembership (ResourceID)",
    "CREATE UNIQUE INDEX ix_v_Collection_CollectionID ON v_Collection (CollectionID)",
)


def write_sqlite(estate: SampleEstate, path: str | Path) -> dict[str, Path]:
    """One SQLite replica per site: tables named like the views, the real column names,
    dates as ``YYYY-MM-DD HH:MM:SS.fff`` text. ``ResourceID`` is the primary key of the
    one-row-per-device views and indexed in the others. Returns the files by site.
    """
    written = {}
    for site, target in sqlite_paths(estate, path).items():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        temporary.unlink(missing_ok=True)
        connection = sqlite3.connect(temporary)
        try:
            connection.execute("PRAGMA journal_mode = OFF")
            connection.execute("PRAGMA synchronous = OFF")
            for view, columns in VIEW_COLUMNS.items():
                frame = estate.tables[site][view]
                declared = [
                    f"{name} {kind}"
                    + (
                        " PRIMARY KEY"
                        if name == "ResourceID" and view in _ONE_ROW_PER_DEVICE
                        else ""
                    )
                    for name, kind in columns
                ]
                connection.execute(f"CREATE TABLE {view} ({', '.join(declared)})")
                values = [_sql_values(frame[name]) for name, _ in columns]
                connection.executemany(
                    f"INSERT INTO {view} VALUES ({', '.join('?' * len(columns))})",
                    zip(*values, strict=True),
                )
            for statement in _INDEXES:
                connection.execute(statement)
            connection.commit()
        finally:
            connection.close()
        os.replace(temporary, target)
        written[site] = target
    return written


# --------------------------------------------------------------------------- config


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def write_config(
    estate: SampleEstate,
    out_dir: str | Path,
    sqlite_paths: Mapping[str, str | Path] | Sequence[str | Path] | None = None,
    filename: str = "comanage.toml",
) -> Path:
    """``out_dir/comanage.toml`` for the estate: one source per site (the CSV folder, or the
    SQLite replica when ``sqlite_paths`` is given), the workloads, the collection filter.
    Paths inside ``out_dir`` are written relative to it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if sqlite_paths is not None and not isinstance(sqlite_paths, Mapping):
        sqlite_paths = dict(zip(estate.sites, sqlite_paths, strict=True))
    as_of = estate.as_of.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        "# Sample estate generated by comanage-dashboard (dashboard/data/sample.py):",
        f"# seed {estate.seed}, as of {as_of}. Every device, name and number is invented.",
        f"organisation = {_toml_string(estate.organisation)}",
        f"as_of = {_toml_string(as_of)}",
        "",
    ]
    for site in estate.sites:
        lines += ["[[sources]]", f"site = {_toml_string(site)}"]
        if sqlite_paths is None:
            lines.append(f"csv = {_toml_string(site)}")
        else:
            target = Path(sqlite_paths[site])
            try:
                shown = target.resolve().relative_to(out_dir.resolve()).as_posix()
            except ValueError:
                shown = target.resolve().as_posix()
            lines.append(f"url = {_toml_string('sqlite:///' + shown)}")
        lines.append("")
    for key, (stage, pilot) in estate.workloads.items():
        lines += [f"[workloads.{key}]", f"stage = {_toml_string(stage)}"]
        if pilot:
            lines.append(f"pilot_collection = {_toml_string(pilot)}")
        lines.append("")
    names = ", ".join(_toml_string(c) for c, _ in estate.collections)
    lines += ["[collections]", f"filter = [{names}]", ""]
    path = out_dir / filename
    path.write_text("\n".join(lines), encoding="utf-8")
    return path

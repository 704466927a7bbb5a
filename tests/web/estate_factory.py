"""A small, deterministic two-site CSV estate for the web tests.

Independent of the sample generator on purpose: the web tests need every chart category
present (including the rare ones), a dropped row (the header warning), an unknown error code
whose detail looks like HTML (text must stay text) and a pilot collection, in a few hundred
rows that load in milliseconds.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from dashboard.data.contract import DEVICE_COLUMNS

COLLECTIONS = {
    "SMS00001": "All Systems",
    "CAS00101": "Windows 11 devices",
    "CAS00102": "Pilot: compliance",
}
HTML_DETAIL = '<img src=x onerror="window.__xss=1">Bad <b>detail</b>'

_OS = (
    # weight, OperatingSystem, Build, ProductType
    (40, "Microsoft Windows NT Workstation 10.0", "10.0.22631", "1"),
    (30, "Microsoft Windows NT Workstation 10.0", "10.0.19045", "1"),
    (5, "Microsoft Windows NT Workstation 10.0", "10.0.22621", "1"),
    (4, "Microsoft Windows NT Workstation 10.0", "10.0.14393", "1"),
    (3, "Microsoft Windows NT Workstation 6.1", "6.1.7601", "1"),
    (8, "Microsoft Windows NT Server 10.0", "10.0.17763", "3"),
    (2, "Microsoft Windows NT Workstation 10.0", "10.0", "1"),
)
_ERRORS = (
    "0x8018002A",
    "0x8018002A",
    "0x80180002",
    "0xCAA20003",
    "0x80070490",
    "-2145910774",
    "0x87D1FDE8",
    "",
)


def _device(rid: int, rng: random.Random) -> dict[str, str]:
    weights = [w for w, *_ in _OS]
    _w, os_name, build, product = rng.choices(_OS, weights=weights)[0]
    row = dict.fromkeys(DEVICE_COLUMNS, "")
    row.update(
        ResourceID=str(rid),
        Name=f"PC{rid:05d}",
        Domain="CONTOSO",
        OperatingSystem=os_name,
        Build=build,
        ProductType=product,
        ClientVersion="5.00.9128.1000",
        LastPolicyRequest="2026-11-18 08:00:00.000",
        LastActiveTime="2026-11-18 08:00:00.000",
    )
    row["ClientInstalled"] = "1" if rng.random() < 0.95 else "0"
    row["ClientActive"] = "1" if rng.random() < 0.9 else "0"
    join = rng.random()
    row["HybridAADJoined"] = "1" if join < 0.82 else "0"
    row["AADJoined"] = "1" if 0.82 <= join < 0.9 else "0"
    flags = dict.fromkeys(
        (
            "MDMEnrolled",
            "ComgmtPolicyPresent",
            "EnrollmentScheduled",
            "PendingLogon",
            "EnrollmentFailed",
        ),
        "0",
    )
    if rng.random() < 0.85:
        flags["ComgmtPolicyPresent"] = "1"
        state = rng.random()
        if state < 0.62:
            flags["MDMEnrolled"] = "1"
            bits = 1 | 8192
            for bit, share in ((2, 0.7), (128, 0.4), (64, 0.3), (16, 0.2), (8, 0.1)):
                if rng.random() < share:
                    bits |= bit
            row["MDMWorkloads"] = str(bits)
        elif state < 0.80:
            flags["EnrollmentFailed"] = "1"
            code = rng.choice(_ERRORS)
            row["EnrollmentStatusCode"] = code
            if code == "0x87D1FDE8":
                row["EnrollmentErrorDetail"] = HTML_DETAIL
        elif state < 0.88:
            flags["PendingLogon"] = "1"
        elif state < 0.95:
            flags["EnrollmentScheduled"] = "1"
    row.update(flags)
    return row


def write_estate(folder: Path, devices: int = 600, seed: int = 7) -> Path:
    """Write two sites (PS1, PS2) and a config; returns the config path.

    ``CAS00101`` (Windows 11 devices) has members in PS1 only, so PS2 + CAS00101 is an
    existing filter that matches no device.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    per_site = {"PS1": devices * 2 // 3, "PS2": devices - devices * 2 // 3}
    for site, count in per_site.items():
        site_dir = folder / site
        site_dir.mkdir(exist_ok=True)
        rows = [_device(16777000 + i, rng) for i in range(count)]
        members = []
        for row in rows:
            rid = row["ResourceID"]
            members.append((rid, "SMS00001", COLLECTIONS["SMS00001"]))
            if site == "PS1" and row["Build"] in ("10.0.22631", "10.0.22621"):
                members.append((rid, "CAS00101", COLLECTIONS["CAS00101"]))
            if int(rid) % 3 == 0:
                members.append((rid, "CAS00102", COLLECTIONS["CAS00102"]))
        if site == "PS1":
            rows[5]["Name"] = "<b>PC-html</b>"
            rows[7]["MDMEnrolled"] = "maybe"  # a bad flag: dropped and reported
        with (site_dir / "devices.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=DEVICE_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        with (site_dir / "collections.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["ResourceID", "CollectionID", "CollectionName"])
            writer.writerows(members)
    config = folder / "comanage.toml"
    config.write_text(
        'organisation = "Contoso (test)"\n'
        'as_of = "2026-11-20T12:00:00Z"\n'
        '\n[[sources]]\nsite = "PS1"\ncsv = "PS1"\n'
        '\n[[sources]]\nsite = "PS2"\ncsv = "PS2"\n'
        '\n[workloads.compliance_policies]\nstage = "pilot"\npilot_collection = "CAS00102"\n'
        '\n[workloads.office_click_to_run_apps]\nstage = "intune"\n'
        '\n[collections]\nfilter = ["SMS00001", "CAS00101"]\n',
        encoding="utf-8",
    )
    return config

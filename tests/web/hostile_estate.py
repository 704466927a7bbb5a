"""The factory estate plus devices whose text from the "site database" is hostile.

Used by the security tests: every such value must come out as text (pages, grid, export),
never as markup, script or a spreadsheet formula.
"""

from __future__ import annotations

import csv
from pathlib import Path

from dashboard.data.contract import DEVICE_COLUMNS
from tests.web.estate_factory import write_estate

XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_DETAIL = "<script>alert(1)</script>"
QUOTE_NAME = '"><svg onload=alert(2)>'
FORMULA_NAME = '=HYPERLINK("http://evil","x")'
XSS_ID = 99000001  # ResourceID of the device named XSS_NAME (site PS1)
QUOTE_ID = 99000002
FORMULA_ID = 99000003
UNKNOWN_CODE = "0x87D1FDEA"  # not in the catalogue: the overview shows the detail itself


def _row(rid: int, name: str, detail: str) -> dict[str, str]:
    row = dict.fromkeys(DEVICE_COLUMNS, "")
    row.update(
        ResourceID=str(rid),
        Name=name,
        Domain="CONTOSO",
        OperatingSystem="Microsoft Windows NT Workstation 10.0",
        Build="10.0.22631",
        ProductType="1",
        ClientInstalled="1",
        ClientVersion="5.00.9128.1000",
        ClientActive="1",
        LastPolicyRequest="2026-11-18 08:00:00.000",
        LastActiveTime="2026-11-18 08:00:00.000",
        HybridAADJoined="1",
        AADJoined="0",
        MDMEnrolled="0",
        ComgmtPolicyPresent="1",
        EnrollmentScheduled="0",
        PendingLogon="0",
        EnrollmentFailed="1",
        EnrollmentStatusCode=UNKNOWN_CODE,
        EnrollmentErrorDetail=detail,
    )
    return row


def write_hostile_estate(folder: Path) -> Path:
    """The small two-site factory estate with three hostile devices added to PS1."""
    config = write_estate(folder, devices=150, seed=11)
    hostile = [
        _row(XSS_ID, XSS_NAME, XSS_DETAIL),
        _row(QUOTE_ID, QUOTE_NAME, XSS_DETAIL),
        _row(FORMULA_ID, FORMULA_NAME, XSS_DETAIL),
    ]
    with (folder / "PS1" / "devices.csv").open("a", newline="", encoding="utf-8") as handle:
        csv.DictWriter(handle, fieldnames=DEVICE_COLUMNS).writerows(hostile)
    with (folder / "PS1" / "collections.csv").open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(
            (row["ResourceID"], "SMS00001", "All Systems") for row in hostile
        )
    return config

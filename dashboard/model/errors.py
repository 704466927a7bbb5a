"""The enrollment error catalogue: meaning, fix and whether the client retries.

Descriptions are the project's own words. Two pairs of codes are spelled both ways in
Microsoft's pages (0x8018002B / 0x80180031 and 0x8018002A / 0x80180030): both are listed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    description: str
    fix: str
    transient: bool


NO_CODE = "0x00000000"
NO_CODE_DESCRIPTION = "No error code reported"

_ROWS: tuple[tuple[tuple[str, ...], str, str, bool], ...] = (
    (
        ("0x8000FFFF",),
        "MDM auto-enrollment not configured in Entra ID, or unexpected enrollment URL",
        "Enable Windows automatic enrollment (MDM user scope) in Entra ID.",
        False,
    ),
    (
        ("0x80180018",),
        "The user's licence blocks enrollment",
        "Assign Intune licences to the user.",
        False,
    ),
    (
        ("0x8018002B", "0x80180031"),
        "MDM not yet configured (Entra configuration not applied yet)",
        "Wait: the client retries by itself.",
        True,
    ),
    (
        ("0x8018002A", "0x80180030"),
        "The user cancelled, or MFA is required and the prompt was "
        "ignored / per-user MFA is enforced",
        "Let users complete MFA; avoid per-user MFA 'Enforced'.",
        True,
    ),
    (
        ("0x80180014", "0x80180015"),
        "MDM, or this platform or version, is not supported",
        "Check the Intune enrollment restrictions.",
        False,
    ),
    (
        ("0x80180002",),
        "The server could not authenticate the user (no Entra token)",
        "Check that the user can sign in to Entra ID.",
        False,
    ),
    (("0x80070032",), "Auto-enrollment needs Windows 10 1709 or later", "Upgrade the OS.", False),
    (
        ("0xCAA9004D",),
        "ADAL: user realm discovery failed",
        "Check the Entra ID configuration.",
        False,
    ),
    (("0xCAA10001",), "Needs a user sign-in", "Wait for the user to sign in.", True),
    (
        ("0xCAA90014",),
        "ADAL: security token request failed",
        "Check the Entra ID configuration.",
        False,
    ),
    (
        ("0x801901AD",),
        "HTTP error from the enrollment service (often throttling)",
        "Retry later.",
        True,
    ),
    (
        ("0xCAA9001F",),
        "Integrated Windows authentication only works with federation",
        "Review the hybrid join design.",
        False,
    ),
    (
        ("0xCAA70004",),
        "Server or proxy not found",
        "Check connectivity to the Microsoft endpoints.",
        True,
    ),
    (
        ("0x80070490",),
        "Element not found",
        "Usually transient; if it persists, contact support.",
        True,
    ),
    (("0x82AA0008",), "Not enough memory", "Transient: the client retries.", True),
    (
        ("0xCAA20003",),
        "Authorization grant failed for this assertion",
        "Check the Entra ID configuration.",
        False,
    ),
    (
        ("0x80180005",),
        "Management server failure",
        "Transient; if it persists, contact support.",
        True,
    ),
    (("0x80192EE7",), "Name not resolved", "Check DNS.", False),
    (("0x80192EE2",), "Timeout talking to the service", "Check connectivity.", True),
    (
        ("0x80180023",),
        "Provisioning failed: the dmwappushservice service is missing",
        "Restore the service, then reboot.",
        False,
    ),
    (
        ("0x801C03F2",),
        "Hybrid join not complete: the device is not yet synced to Entra ID, "
        "or has no userCertificate",
        "Usually clears after the next Entra Connect sync; if it "
        "persists, check the device's userCertificate attribute and the sync scope.",
        True,
    ),
    (
        ("0x80180026",),
        "MDM blocked by a policy on the device",
        "Remove the blocking policy.",
        False,
    ),
    (("0x80280036",), "TPM in FIPS mode", "Not supported for device registration.", False),
    (
        ("0x80090016",),
        "TPM key problem: Windows is not the TPM owner, often a badly sysprepped image",
        "Check the TPM's status (tpm.msc) and the imaging process; clear the "
        "TPM only as a last resort, after backing up the BitLocker recovery keys.",
        False,
    ),
    (
        ("0x800706D9",),
        "No endpoints available from the endpoint mapper: the dmwappushservice "
        "service is disabled (the raw result behind 0x80180023)",
        "Set the dmwappushservice service to start automatically, then reboot.",
        False,
    ),
    (
        ("0x80180001",),
        "The enrollment server's message could not be read",
        "Usually transient; if it repeats, contact support.",
        True,
    ),
)

CATALOGUE: dict[str, ErrorInfo] = {
    code: ErrorInfo(code, description, fix, transient)
    for codes, description, fix, transient in _ROWS
    for code in codes
}
UNKNOWN_FIX = (
    "Read CoManagementHandler.log on the device and search Microsoft's MDM "
    "registration error list for the code."
)

LOG_HINTS = (
    "CoManagementHandler.log (C:\\Windows\\CCM\\Logs) on the device: the co-management "
    "handler's decisions and the enrollment result.",
    "Device-token enrollment (Windows 10 1803 and later) logs "
    "RegisterDeviceWithManagementUsingAADDeviceCredentials there.",
    '"Queuing enrollment timer" means enrollment is randomised by design and can take days '
    "on large estates.",
)


def describe(code: str, detail: str | None = None) -> ErrorInfo:
    """The catalogue entry for a normalised code, else one made from the device's detail."""
    if code in CATALOGUE:
        return CATALOGUE[code]
    if code == NO_CODE:
        return ErrorInfo(code, NO_CODE_DESCRIPTION, UNKNOWN_FIX, False)
    text = (detail or "").strip()
    return ErrorInfo(code, text or f"Unknown error {code}", UNKNOWN_FIX, False)


def error_table(codes: pd.Series, details: pd.Series) -> list[dict]:
    """Count failures per code, described from the catalogue or the most frequent detail.

    Sorted by count descending, then code; each row carries fix and transient too so the
    page and the CLI share one description.
    """
    if codes.empty:
        return []
    counts = codes.value_counts()
    frame = pd.DataFrame({"code": codes.to_numpy(), "detail": details.to_numpy()})
    unknown = frame[~frame["code"].isin(list(CATALOGUE)) & frame["detail"].notna()]
    top_detail = {}
    if not unknown.empty:
        grouped = unknown.groupby(["code", "detail"]).size().reset_index(name="n")
        grouped = grouped.sort_values(["code", "n", "detail"], ascending=[True, False, True])
        top_detail = grouped.drop_duplicates("code").set_index("code")["detail"].to_dict()
    rows = []
    for code, count in counts.items():
        info = describe(str(code), top_detail.get(code))
        rows.append(
            {
                "code": str(code),
                "description": info.description,
                "count": int(count),
                "fix": info.fix,
                "transient": info.transient,
            }
        )
    rows.sort(key=lambda row: (-int(str(row["count"])), str(row["code"])))
    return rows

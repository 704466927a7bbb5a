"""Words shown to people for the model's keys, in one place for the page, CLI and report."""

from __future__ import annotations

from .settings import WORKLOADS

_JOIN = {
    "entra": {"hybrid": "Microsoft Entra hybrid joined", "aad": "Microsoft Entra joined"},
    "azure": {"hybrid": "hybrid Azure AD-joined", "aad": "Azure AD-joined"},
}


def enrollment_status_labels(wording: str = "entra") -> dict[str, str]:
    """Labels of the enrollment-status donut; ``wording`` is 'entra' (default) or 'azure'."""
    join = _JOIN.get(wording, _JOIN["entra"])
    return {
        "success_hybrid": f"Success, {join['hybrid']}",
        "success_aad": f"Success, {join['aad']}",
        "enrolling_hybrid": f"Enrolling, {join['hybrid']}",
        "enrolling_aad": f"Enrolling, {join['aad']}",
        "failure_hybrid": f"Failure, {join['hybrid']}",
        "failure_aad": f"Failure, {join['aad']}",
        "pending_user_sign_in": "Pending user sign in",
    }


def join_type_label(join_type: str, wording: str = "entra") -> str:
    return _JOIN.get(wording, _JOIN["entra"]).get(join_type, join_type)


FUNNEL_LABELS = {
    "eligible": "Eligible devices",
    "scheduled": "Scheduled",
    "initiated": "Enrollment initiated",
    "enrolled": "Enrolled",
}
AUTHORITY_LABELS = {
    "configmgr": "Configuration Manager",
    "pilot_intune": "Pilot Intune",
    "intune": "Intune",
}
WORKLOAD_LABELS = {key: label for key, (_bit, label) in WORKLOADS.items()}
REASON_LABELS = {
    "server": "Server OS (not supported)",
    "os-too-old": "OS too old (before Windows 10 1709)",
    "os-unknown": "OS unknown",
    "no-client": "No ConfigMgr client",
    "not-joined": "Not joined to Entra ID",
    "no-policy": "No co-management policy",
    "failed": "Enrollment failed",
    "pending-sign-in": "Pending user sign in",
    "scheduled": "Enrollment scheduled",
    "enrolling": "Enrolling",
}
REASON_EXPLANATIONS = {
    "server": "Co-management supports Windows 10/11 workstations only.",
    "os-too-old": "Co-management needs Windows 10 1709 or later: upgrade the OS.",
    "os-unknown": "No usable OS version or build in inventory: check hardware inventory.",
    "no-client": "Install the Configuration Manager client.",
    "not-joined": "Join the device to Microsoft Entra ID (hybrid join for domain devices).",
    "no-policy": "Outside the auto-enrollment collection, or policy not received yet.",
    "failed": "See the enrollment error and its fix.",
    "pending-sign-in": "Enrollment waits for a user to sign in.",
    "scheduled": "Enrollment is scheduled; the client enrolls at a randomised time.",
    "enrolling": "Enrollment started and has not finished yet.",
}

"""Words shown for the Intune side's keys (reconciliation states, compliance, agents)."""

from __future__ import annotations

INTUNE_STATE_LABELS = {
    "agree": "Agree",
    "missing": "Missing in Intune",
    "stale": "Stale in Intune",
    "not-comanaged-in-intune": "Not co-managed in Intune",
    "intune-ahead": "Intune ahead",
}
INTUNE_STATE_EXPLANATIONS = {
    "agree": "ConfigMgr says enrolled, and Intune has a current co-managed record",
    "missing": "ConfigMgr says enrolled, and Intune has no record of the device",
    "stale": "ConfigMgr says enrolled, and Intune's record has not synced recently",
    "not-comanaged-in-intune": (
        "ConfigMgr says enrolled, and Intune's current record is not co-managed"
    ),
    "intune-ahead": "ConfigMgr says not enrolled, and Intune has a current co-managed record",
}
INTUNE_ONLY_LABEL = "Intune only"
INTUNE_ONLY_EXPLANATION = (
    "Co-managed Windows records in Intune that match no ConfigMgr record (the whole source)"
)
# The Intune console shows ``configManager`` as "See ConfigMgr": ConfigMgr evaluates it.
COMPLIANCE_LABELS = {
    "compliant": "Compliant",
    "noncompliant": "Not compliant",
    "inGracePeriod": "In grace period",
    "conflict": "Conflict",
    "error": "Error",
    "unknown": "Unknown",
    "configManager": "See ConfigMgr",
    "no_record": "No Intune record",
}
AGENT_LABELS = {
    "mdm": "MDM",
    "configurationManagerClient": "ConfigMgr client",
    "configurationManagerClientMdm": "ConfigMgr client and MDM (co-managed)",
    "configurationManagerClientMdmEas": "ConfigMgr client, MDM and EAS (co-managed)",
}
MATCH_LABELS = {"id": "by Entra device ID", "name": "by name"}

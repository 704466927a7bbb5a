"""The summary as an aligned table for people (``summary --format table``)."""

from __future__ import annotations

from .intune_labels import COMPLIANCE_LABELS, INTUNE_ONLY_LABEL, INTUNE_STATE_LABELS
from .labels import (
    AUTHORITY_LABELS,
    FUNNEL_LABELS,
    REASON_LABELS,
    WORKLOAD_LABELS,
    enrollment_status_labels,
)
from .model.attention import rules_counted
from .settings import Settings


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f} %" if whole else "    - "


def _section(title: str, rows: list[tuple[str, int]], whole: int, width: int = 44) -> list[str]:
    lines = [title]
    for label, count in rows:
        lines.append(f"  {label:<{width}} {count:>10,}  {_pct(count, whole)}")
    return [*lines, ""]


def format_table(summary: dict, settings: Settings) -> str:
    devices = summary["devices"]
    comanaged = summary["comanaged"]
    targeted = sum(summary["enrollment_status"].values())
    not_comanaged = devices - comanaged
    lines = [
        f"Co-management summary, data as of {summary['data_as_of']}",
        "  sources: "
        + ", ".join(
            f"{s['site']} ({s['kind']}, {s['rows']:,} rows, {s['dropped']:,} dropped)"
            for s in summary["sources"]
        ),
        "",
    ]
    lines += _section(
        "Devices",
        [
            ("Devices", devices),
            ("Co-managed", comanaged),
            ("Without the ConfigMgr client", summary["without_client"]),
        ],
        devices,
    )
    # The OS figures count client devices, as the console's tile does.
    clients = devices - summary["without_client"]
    lines += _section(
        "Client OS distribution (% of client devices)", list(summary["os_groups"].items()), clients
    )
    lines.insert(
        -1,
        f"  {summary['without_client']:,} records without the ConfigMgr client "
        "are not counted here",
    )
    lines += _section(
        "OS releases (% of client devices)", list(summary["os_releases"].items()), clients
    )
    funnel = summary["funnel"]
    lines += _section(
        "Co-management status (% of eligible)",
        [(FUNNEL_LABELS[k], v) for k, v in funnel.items()],
        funnel["eligible"],
    )
    labels = enrollment_status_labels(settings.status_labels)
    lines += _section(
        "Co-management enrollment status (% of targeted)",
        [(labels[k], v) for k, v in summary["enrollment_status"].items()],
        targeted,
    )
    lines.append("Workload transition (% of co-managed)")
    lines.append(
        f"  {'':<28} "
        + " ".join(f"{AUTHORITY_LABELS[a]:>22}" for a in ("configmgr", "pilot_intune", "intune"))
    )
    for key, counts in summary["workloads"].items():
        cells = " ".join(
            f"{counts[a]:>14,} {_pct(counts[a], comanaged)}"
            for a in ("configmgr", "pilot_intune", "intune")
        )
        lines.append(f"  {WORKLOAD_LABELS[key]:<28} {cells}")
    lines.append("")
    failures = sum(e["count"] for e in summary["enrollment_errors"])
    lines.append("Enrollment errors (% of failures)")
    if not summary["enrollment_errors"]:
        lines.append("  none")
    for error in summary["enrollment_errors"]:
        lines.append(
            f"  {error['code']}  {error['count']:>8,}  {_pct(error['count'], failures)}"
            f"  {' '.join(error['description'].split())}"
        )
    lines.append("")
    lines += _section(
        "Why devices are not co-managed (% of not co-managed)",
        [(REASON_LABELS[k], v) for k, v in summary["not_comanaged_reasons"].items()],
        not_comanaged,
    )
    lines += _section(
        "Devices that need attention (% of devices)",
        [("Any rule", summary["attention_devices"])]
        + [
            (f"{rule.title} ({rule.severity})", summary["attention"][rule.id])
            for rule in rules_counted(summary["attention"])
        ],
        devices,
        width=56,
    )
    if "intune" in summary:
        lines += _intune_sections(summary["intune"], comanaged)
    return "\n".join(lines).rstrip() + "\n"


def _intune_sections(intune: dict, comanaged: int) -> list[str]:
    """The ``intune`` object: the source, the reconciliation and the compliance counts."""
    matched = intune["matched"]
    lines = [
        "Intune records",
        f"  {intune['records']:,} rows read, {intune['dropped']:,} dropped, "
        f"{intune['windows']:,} Windows records; {matched:,} ConfigMgr records matched "
        f"({intune['matched_by_name']:,} by name)",
        "",
    ]
    reconciliation = intune["reconciliation"]
    claimed = sum(reconciliation.values()) - reconciliation["intune-ahead"]
    lines += _section(
        "ConfigMgr and Intune (% of records claiming enrollment)",
        [(INTUNE_STATE_LABELS[k], v) for k, v in reconciliation.items()]
        + [(INTUNE_ONLY_LABEL, intune["intune_only"])],
        claimed,
    )
    lines += _section(
        "Intune compliance (% of co-managed)",
        [(COMPLIANCE_LABELS[k], v) for k, v in intune["compliance"].items()]
        + [("Compliance authority mismatch", intune["authority_mismatch"])],
        comanaged,
    )
    return lines

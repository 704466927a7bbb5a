"""The key figures: one declared table, read by the overview's tiles, their week-over-week
change and the weekly report.

Each KPI says how its number is computed from a summary, what it is a share of (the line
under the number), which direction is progress, which device-list query shows its devices
and its accent colour. Everything that shows a KPI reads this table, so the tile, its change
and the report cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..text import pct

Summary = Mapping[str, Any]


def attention_devices(summary: Summary) -> int:
    """The attention rules' count when the summary has it, else failures + pending sign-in
    (a summary stored before the rules existed)."""
    if "attention_devices" in summary:
        return int(summary["attention_devices"])
    status = summary["enrollment_status"]
    return int(status["failure_hybrid"] + status["failure_aad"] + status["pending_user_sign_in"])


def _waiting(summary: Summary) -> int:
    return int(summary["funnel"]["eligible"] - summary["funnel"]["enrolled"])


def _failures(summary: Summary) -> int:
    status = summary["enrollment_status"]
    return int(status["failure_hybrid"] + status["failure_aad"])


@dataclass(frozen=True)
class Kpi:
    id: str  # the tile's element id (pages and tests find it by this)
    metric: str  # its name in the weekly report's figures
    label: str
    explanation: str
    value: Callable[[Summary], int]
    # The line under the number: a share of ``whole`` ("12.5 % of devices"), or ``note``.
    whole: Callable[[Summary], int] | None = None
    of: str = ""
    note: str = ""
    good: Literal["up", "down"] | None = None  # which direction is progress
    filters: Mapping[str, str | list[str]] = field(default_factory=dict)  # device list
    accent: str = "ink"  # a colour name of the charts' palette

    def line(self, summary: Summary) -> str:
        if self.whole is None:
            return self.note
        return f"{pct(self.value(summary), self.whole(summary))} {self.of}"


KPIS: tuple[Kpi, ...] = (
    Kpi(
        id="kpi-devices",
        metric="devices",
        label="Devices",
        explanation="Every device record in this view",
        value=lambda s: int(s["devices"]),
        note="in this view",
    ),
    Kpi(
        id="kpi-comanaged",
        metric="comanaged",
        label="Co-managed",
        explanation="MDM enrolled with co-management policy",
        value=lambda s: int(s["comanaged"]),
        whole=lambda s: int(s["devices"]),
        of="of devices",
        good="up",
        filters={"comanaged": "1"},
        accent="success",
    ),
    Kpi(
        id="kpi-eligible",
        metric="eligible_not_comanaged",
        label="Eligible, not yet co-managed",
        explanation="Eligible devices minus enrolled devices (co-management status)",
        value=_waiting,
        whole=lambda s: int(s["funnel"]["eligible"]),
        of="of eligible",
        good="down",
        filters={"funnel": "eligible", "comanaged": "0"},
        accent="pilot",
    ),
    Kpi(
        id="kpi-failures",
        metric="failures",
        label="Enrollment failures",
        explanation="Both Failure slices of the enrollment status",
        value=_failures,
        whole=lambda s: int(sum(s["enrollment_status"].values())),
        of="of targeted",
        good="down",
        filters={"enrollment_status": ["failure_hybrid", "failure_aad"]},
        accent="failure",
    ),
    Kpi(
        id="kpi-attention",
        metric="attention_devices",
        label="Need attention",
        explanation="Devices at least one attention rule flags",
        value=attention_devices,
        whole=lambda s: int(s["devices"]),
        of="of devices",
        good="down",
        filters={"attention": "any"},
        accent="pending",
    ),
)
BY_ID = {kpi.id: kpi for kpi in KPIS}
BY_METRIC = {kpi.metric: kpi for kpi in KPIS}


def kpi_values(summary: Summary) -> dict[str, tuple[int, str]]:
    """KPI id -> (number, the line under it), in table order."""
    return {kpi.id: (kpi.value(summary), kpi.line(summary)) for kpi in KPIS}


__all__ = ["BY_ID", "BY_METRIC", "KPIS", "Kpi", "attention_devices", "kpi_values", "pct"]

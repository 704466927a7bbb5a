"""The shape of a summary: what ``model.summary.summarize`` returns, and a stored day's
metrics read back in that shape (``model.trends.summary_from_metrics``).

TypedDicts, so a summary stays plain JSON (``summary --format json``, the shared cache) while
every key read from it is checked.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class Funnel(TypedDict):
    eligible: int
    scheduled: int
    initiated: int
    enrolled: int


class ErrorRow(TypedDict):
    code: str  # 0x%08X
    description: str
    count: int


class ReadinessRow(TypedDict):
    step: str
    label: str
    checked: int  # devices that reached the step
    passed: int
    failed: int


class SourceRow(TypedDict):
    site: str
    kind: str
    rows: int
    dropped: int


class IntuneFigures(TypedDict):
    """The Intune source's own figures (``Estate.intune_figures``): the whole source,
    whatever the filter."""

    records: int  # data rows read
    windows: int  # Windows records kept
    dropped: int  # rows dropped as bad
    intune_only: int  # co-managed Windows records matching no ConfigMgr record


class IntuneSummary(IntuneFigures):
    """The summary's ``intune`` object (docs/definitions.md §8)."""

    matched: int  # ConfigMgr records with a matching Intune record
    matched_by_name: int
    reconciliation: dict[str, int]  # state -> ConfigMgr records
    compliance: dict[str, int]  # compliance state (and no_record) -> co-managed records
    authority_mismatch: int


class Summary(TypedDict):
    devices: int
    comanaged: int
    os_groups: dict[str, int]  # client devices per OS group
    os_releases: dict[str, int]  # client devices per release, most first
    without_client: int  # records without the ConfigMgr client (not in the OS figures)
    funnel: Funnel
    enrollment_status: dict[str, int]  # over targeted devices
    workloads: dict[str, dict[str, int]]  # workload -> authority -> co-managed devices
    enrollment_errors: list[ErrorRow]
    not_comanaged_reasons: dict[str, int]
    attention: dict[str, int]  # rule id -> devices
    attention_devices: int  # devices at least one rule flags
    readiness: list[ReadinessRow]
    data_as_of: str
    sources: list[SourceRow]
    intune: NotRequired[IntuneSummary]  # only with an Intune source


class PastIntune(TypedDict):
    """A stored day's ``intune`` object: the source's own ``records``, ``windows`` and
    ``dropped`` are not stored."""

    matched: int
    reconciliation: dict[str, int]
    intune_only: int
    compliance: dict[str, int]
    authority_mismatch: int


class PastSummary(TypedDict):
    """A stored day: every known key present (zeros filled). ``enrollment_errors`` is
    ``{code: count}`` and ``readiness`` ``{step: devices failing it first}``; ``os_groups``
    and ``without_client`` are None for a day whose client-device counts are unknown."""

    devices: int
    comanaged: int
    os_groups: dict[str, int] | None
    without_client: int | None
    funnel: dict[str, int]
    enrollment_status: dict[str, int]
    workloads: dict[str, dict[str, int]]
    not_comanaged_reasons: dict[str, int]
    attention: dict[str, int]
    attention_devices: int
    readiness: dict[str, int]
    enrollment_errors: dict[str, int]
    intune: NotRequired[PastIntune]  # a day that had an Intune source


__all__ = [
    "ErrorRow",
    "Funnel",
    "IntuneFigures",
    "IntuneSummary",
    "PastIntune",
    "PastSummary",
    "ReadinessRow",
    "SourceRow",
    "Summary",
]

"""The device list's query: filters from a URL, sorting, paging and the rows shown.

Every filter is validated against its allowed values before it touches the estate; nothing
from a request is used as code or SQL. Sorting uses orders computed once per estate
(``Estate.sort_order``), so a page of a million-row estate costs one boolean pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..labels import AUTHORITY_LABELS, REASON_LABELS, enrollment_status_labels, join_type_label
from ..settings import WORKLOADS
from .attention import READINESS_IDS, RULES, RULES_BY_ID, SEVERITIES, rule_ids
from .errors import describe
from .states import ENROLLMENT_STATUSES, FUNNEL_STAGES, OS_GROUPS, REASONS

FILTER_NAMES = (
    "site", "collection", "os_group", "release", "funnel", "enrollment_status", "workload",
    "authority", "error", "reason", "attention", "severity", "comanaged", "readiness", "q",
)
_CODE_RE = re.compile(r"^0x[0-9A-F]{8}$")
MAX_QUERY_LENGTH = 100

FILTER_LABELS = {
    "site": "Site", "collection": "Collection", "os_group": "OS", "release": "Release",
    "funnel": "Funnel stage", "enrollment_status": "Enrollment status",
    "workload": "Workload", "authority": "Authority", "error": "Error",
    "reason": "Reason", "attention": "Needs attention", "severity": "Severity",
    "comanaged": "Co-managed", "readiness": "Fails prerequisite", "q": "Name contains",
}


@dataclass
class DeviceFilter:
    values: dict[str, str] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)  # "name=value: why", for a notice

    def query_string(self, drop: str | None = None) -> str:
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in self.values.items() if k != drop})


def parse_filter(query: dict, sites: list[str], collections: list[str],
                 releases: list[str]) -> DeviceFilter:
    """Keep only known parameters with allowed values; say what was rejected and why."""
    allowed: dict[str, object] = {
        "site": sites, "collection": collections, "os_group": OS_GROUPS, "release": releases,
        "funnel": FUNNEL_STAGES, "enrollment_status": ENROLLMENT_STATUSES,
        "workload": tuple(WORKLOADS), "authority": tuple(AUTHORITY_LABELS),
        "reason": REASONS, "attention": ("any", *RULES_BY_ID), "severity": SEVERITIES,
        "comanaged": ("1", "0"), "readiness": READINESS_IDS,
    }
    result = DeviceFilter()
    for name, raw in query.items():
        value = raw[-1] if isinstance(raw, list) else raw
        if value is None or str(value) == "":
            continue
        value = str(value)
        if name not in FILTER_NAMES:
            result.rejected.append(f"{name}: unknown filter")
            continue
        if name == "q":
            result.values[name] = value[:MAX_QUERY_LENGTH]
        elif name == "error":
            code = value.strip().upper().replace("0X", "0x", 1)
            if _CODE_RE.match(code):
                result.values[name] = code
            else:
                result.rejected.append(f"error={value}: not an error code like 0x8018002A")
        elif value in allowed[name]:
            result.values[name] = value
        else:
            result.rejected.append(f"{name}={value}: not a known value")
    if "authority" in result.values and "workload" not in result.values:
        result.rejected.append("authority: needs a workload")
        del result.values["authority"]
    return result


def filter_mask(estate, devices: pd.DataFrame, flt: DeviceFilter) -> np.ndarray:
    """Rows of ``devices`` (the estate's full frame) matching every filter."""
    v = flt.values
    mask = np.ones(len(devices), dtype=bool)

    def equal(column: str, value: str) -> None:
        nonlocal mask
        mask &= (devices[column] == value).to_numpy(dtype=bool, na_value=False)

    if "site" in v:
        equal("site", v["site"])
    if "collection" in v:
        mask &= estate.collection_mask(v["collection"])
    if "os_group" in v:
        equal("os_group", v["os_group"])
    if "release" in v:
        equal("os_release", v["release"])
    if "funnel" in v:
        column = {"enrolled": "comanaged"}.get(v["funnel"], v["funnel"])
        mask &= devices[column].to_numpy()
    if "enrollment_status" in v:
        equal("enrollment_status", v["enrollment_status"])
    if "workload" in v:
        column = f"wl_{v['workload']}"
        if "authority" in v:
            equal(column, v["authority"])
        else:
            mask &= devices[column].notna().to_numpy()
    if "error" in v:
        equal("error_code", v["error"])
    if "reason" in v:
        equal("reason", v["reason"])
    if "attention" in v:
        bits = devices["attention"].to_numpy()
        if v["attention"] == "any":
            mask &= bits != 0
        else:
            from .attention import RULE_BITS

            mask &= (bits & RULE_BITS[v["attention"]]) != 0
    if "severity" in v:
        equal("severity", v["severity"])
    if "comanaged" in v:
        mask &= devices["comanaged"].to_numpy() == (v["comanaged"] == "1")
    if "readiness" in v:
        equal("readiness", v["readiness"])
    if "q" in v:
        names = devices["Name"].astype("str").str.contains(v["q"], case=False, regex=False)
        mask &= names.fillna(False).to_numpy(dtype=bool)
    return mask


# Columns the grid can sort by, and the frame column each sorts on.
SORTABLE = {
    "name": "Name", "site": "site", "release": "os_release", "join_type": "join_type",
    "state": "state_rank", "reason": "reason", "error_code": "error_code",
    "client_active": "ClientActive", "last_policy_request": "LastPolicyRequest",
    "severity": "severity_rank",
}


def sort_key(devices: pd.DataFrame, column: str) -> np.ndarray:
    """Row order ascending by ``column`` (ties by name), missing values last."""
    if column == "state_rank":
        values = state_rank(devices)
    else:
        values = devices[SORTABLE.get(column, column)]
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype("str")
    names = devices["Name"].astype("str").fillna("")
    frame = pd.DataFrame({"v": np.asarray(values), "n": names.to_numpy()})
    return frame.sort_values(["v", "n"], na_position="last", kind="stable").index.to_numpy()


def page_rows(order: np.ndarray, mask: np.ndarray, descending: bool, start: int,
              end: int) -> np.ndarray:
    """Positions of the rows on one page, from a precomputed ascending order."""
    selected = order[mask[order]]
    if descending:
        selected = selected[::-1]
    return selected[start:end]


NOT_TARGETED = "Not targeted"


def state_rank(devices: pd.DataFrame) -> np.ndarray:
    """Order of the state column: the enrollment statuses in their donut order, then the
    devices co-management does not target."""
    codes = devices["enrollment_status"].cat.codes.to_numpy()
    return np.where(codes < 0, len(ENROLLMENT_STATUSES), codes)


def _mapped(values: pd.Series, function) -> np.ndarray:
    """Apply ``function`` once per distinct value (NA included) and spread the result."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    lookup = np.array([function(u) for u in uniques] + [function(None)], dtype=object)
    return lookup[codes]


def _text(value) -> str:
    return "" if value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and np.isnan(value)) else str(value)


def display_frame(devices: pd.DataFrame, positions: np.ndarray, wording: str = "entra"
                  ) -> pd.DataFrame:
    """The list's columns as plain text for some device positions (vectorised)."""
    part = devices.iloc[positions]
    statuses = enrollment_status_labels(wording)
    codes = part["error_code"].astype("object")
    pairs = codes.astype("str") + "\x00" + part["EnrollmentErrorDetail"].fillna("").astype("str")
    described = _mapped(pairs.where(codes.notna(), None), lambda pair: "" if pair is None else
                        describe(*pair.split("\x00", 1)).description)
    fixes = _mapped(codes, lambda code: "" if code is None else describe(code).fix)
    last = part["LastPolicyRequest"]
    return pd.DataFrame({
        "resource_id": part["ResourceID"].to_numpy(),
        "name": part["Name"].fillna("").astype("str").to_numpy(),
        "site": part["site"].astype("str").to_numpy(),
        "domain": part["Domain"].fillna("").astype("str").to_numpy(),
        "os_group": part["os_group"].astype("str").to_numpy(),
        "release": part["os_release"].astype("str").to_numpy(),
        "join_type": np.where(part["joined"].to_numpy(),
                              _mapped(part["join_type"], lambda j: join_type_label(j, wording)),
                              "Not joined"),
        "state": _mapped(part["enrollment_status"],
                         lambda s: statuses.get(s, NOT_TARGETED) if s else NOT_TARGETED),
        "reason": _mapped(part["reason"], lambda r: REASON_LABELS.get(r, "") if r else ""),
        "error_code": _mapped(codes, lambda c: c or ""),
        "error": described,
        "error_fix": fixes,
        "client_active": _mapped(part["ClientActive"], lambda f: "" if f is None or f != f
                                 else ("yes" if f == 1 else "no")),
        "last_policy_request": last.dt.strftime("%Y-%m-%d %H:%M").fillna("").to_numpy(),
        "severity": part["severity"].astype("object").fillna("").to_numpy(),
        "attention": _mapped(part["attention"], lambda m: ", ".join(rule_ids(int(m or 0)))),
    }, index=positions)


def rows_for(devices: pd.DataFrame, positions: np.ndarray, wording: str = "entra"
             ) -> list[dict]:
    """The grid's rows (plain strings, rendered as text) for some device positions."""
    frame = display_frame(devices, positions, wording)
    frame["resource_id"] = frame["resource_id"].astype(int)
    return frame.to_dict("records")


EXPORT_COLUMNS = {
    "resource_id": "ResourceID", "name": "Name", "site": "Site", "domain": "Domain",
    "os_group": "OS group", "release": "OS release", "join_type": "Join type",
    "state": "State", "reason": "Reason", "error_code": "Error code", "error": "Error",
    "error_fix": "Error fix", "client_active": "Client active",
    "last_policy_request": "Last policy request", "severity": "Severity",
    "attention": "Attention rules", "fixes": "Fixes",
}


def _rule_fixes(attention: str | None) -> str:
    if not attention:
        return ""
    return " | ".join(f"{rule}: {RULES_BY_ID[rule].fix}" for rule in attention.split(", ")
                      if rule)


def export_chunks(devices: pd.DataFrame, positions: np.ndarray, wording: str = "entra",
                  chunk: int = 20000) -> Iterator[pd.DataFrame]:
    """The export's rows a chunk at a time, so memory stays flat however many match."""
    for begin in range(0, len(positions), chunk):
        frame = display_frame(devices, positions[begin:begin + chunk], wording)
        frame["fixes"] = _mapped(frame["attention"], _rule_fixes)
        yield frame[list(EXPORT_COLUMNS)].rename(columns=EXPORT_COLUMNS)


__all__ = ["RULES", "DeviceFilter", "parse_filter", "filter_mask", "rows_for", "export_chunks"]

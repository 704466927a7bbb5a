"""The Intune-only list: Intune co-managed Windows records that match no ConfigMgr record.

Pure functions over the Intune frame (columns as ``data.intune_source`` reads them, Graph
property names) and the rows of it that are Intune-only: the order a sorted page shows,
the rows of one page as text, and the CSV export's chunks (every text cell neutralised
like the device export's).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from ..intune_labels import AGENT_LABELS, COMPLIANCE_LABELS
from .device_query import _mapped, neutralise, text_rank

# Grid column -> frame column it sorts on (text case-insensitively, dates in time order).
SORTABLE = {
    "name": "deviceName",
    "intune_id": "id",
    "entra_id": "azureADDeviceId",
    "agent": "managementAgent",
    "compliance": "complianceState",
    "last_sync": "lastSyncDateTime",
    "enrolled": "enrolledDateTime",
    "os_version": "osVersion",
    "user": "userPrincipalName",
}
DEFAULT_SORT = ("name", False)
EXPORT_COLUMNS = {
    "name": "Device name",
    "intune_id": "Intune device ID",
    "entra_id": "Entra device ID",
    "agent": "Management agent",
    "compliance": "Compliance",
    "last_sync": "Last sync",
    "enrolled": "Enrolled",
    "os_version": "OS version",
    "user": "Primary user",
}


def sort_order(frame: pd.DataFrame, rows: np.ndarray, column: str, descending: bool) -> np.ndarray:
    """``rows`` (positions in ``frame``) in the order of a grid column, ties by device name
    ascending, missing values last in either direction; an unknown column sorts by name."""
    part = frame.iloc[rows]
    names = text_rank(part["deviceName"])
    values = part[SORTABLE.get(column, "deviceName")]
    if pd.api.types.is_datetime64_any_dtype(values):
        missing = values.isna().to_numpy()
        key = values.to_numpy().view(np.int64)
    else:
        key = text_rank(values)
        missing = key < 0
    key = np.where(missing, 0, key)
    return rows[np.lexsort((names, -key if descending else key, missing))]


def _text(values: pd.Series) -> np.ndarray:
    text: np.ndarray = values.astype("object").where(values.notna(), "").astype(str).to_numpy()
    return text


def _label(labels: dict[str, str], value: object) -> str:
    """A value in words (an unknown one as written; none is blank)."""
    return "" if value is None else labels.get(str(value), str(value))


def _when(values: pd.Series, never: str) -> np.ndarray:
    text: np.ndarray = values.dt.strftime("%Y-%m-%d %H:%M").fillna(never).to_numpy()
    return text


def display_frame(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """The list's columns as plain text for some rows of the Intune frame."""
    part = frame.iloc[positions]
    return pd.DataFrame(
        {
            "name": _text(part["deviceName"]),
            "intune_id": _text(part["id"]),
            "entra_id": _text(part["azureADDeviceId"]),
            "agent": _mapped(part["managementAgent"], lambda a: _label(AGENT_LABELS, a)),
            "compliance": _mapped(part["complianceState"], lambda c: _label(COMPLIANCE_LABELS, c)),
            "last_sync": _when(part["lastSyncDateTime"], "never"),
            "enrolled": _when(part["enrolledDateTime"], ""),
            "os_version": _text(part["osVersion"]),
            "user": _text(part["userPrincipalName"]),
        },
        index=np.asarray(positions),
    )


def rows_for(frame: pd.DataFrame, positions: np.ndarray) -> list[dict]:
    """The grid's rows (plain text, keyed by the Intune device ID and row)."""
    shown = display_frame(frame, positions)
    rows: list[dict] = shown.to_dict("records")
    for row, position in zip(rows, shown.index, strict=True):
        row["key"] = f"{position}:{row['intune_id']}"
    return rows


def export_chunks(
    frame: pd.DataFrame, positions: np.ndarray, chunk: int = 20000
) -> Iterator[pa.Table]:
    """The export's rows a chunk at a time, every text cell neutralised."""
    for begin in range(0, len(positions), chunk):
        shown = display_frame(frame, positions[begin : begin + chunk])
        shown = shown[list(EXPORT_COLUMNS)].rename(columns=EXPORT_COLUMNS)
        yield neutralise(pa.Table.from_pandas(shown, preserve_index=False))

"""``/intune-only``: Intune co-managed Windows records that match no ConfigMgr record.

Devices deleted from ConfigMgr, or never discovered there, that Intune still manages with
the ConfigMgr agent. The list describes the whole Intune source (site and collection
filters are ConfigMgr's and do not apply). Like the device list, the grid uses AG Grid's
infinite row model: the server sorts and slices, the browser holds one block at a time.
"""

from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, html, no_update

from ...model import intune_list
from .devices import MAX_BLOCK, PAGE_SIZE, grid_request, paged_grid_options

PATH = "/intune-only"
NAV_LABEL = "Intune only"
NAV_SCOPED = False  # the list is the whole Intune source: no site or collection applies
NAV_NEEDS_INTUNE = True
EXPORT_PATH = "/export/intune-only.csv"

COLUMNS = [
    {"field": "name", "headerName": "Device name", "minWidth": 180, "pinned": "left"},
    {"field": "compliance", "headerName": "Compliance", "minWidth": 150},
    {"field": "last_sync", "headerName": "Last sync", "minWidth": 150},
    {"field": "agent", "headerName": "Management agent", "minWidth": 260},
    {"field": "user", "headerName": "Primary user", "minWidth": 220},
    {"field": "enrolled", "headerName": "Enrolled", "minWidth": 150},
    {"field": "os_version", "headerName": "OS version", "minWidth": 140},
    {"field": "entra_id", "headerName": "Entra device ID", "minWidth": 300},
    {"field": "intune_id", "headerName": "Intune device ID", "minWidth": 300},
]


def intune_only_rows(estate) -> np.ndarray | None:
    """Rows of the Intune frame that are Intune-only; None without an Intune source."""
    if estate is None or estate.intune is None:
        return None
    return np.asarray(estate.intune_only, dtype=np.int64)


def ordered_rows(estate, column: str, descending: bool) -> np.ndarray | None:
    """The Intune-only rows in a grid column's order (unknown columns: by name); None
    without an Intune source."""
    if estate is None or estate.intune is None:
        return None
    if column not in intune_list.SORTABLE:
        column, descending = intune_list.DEFAULT_SORT
    return estate.intune_only_order(column, descending)


def count_text(count: int) -> str:
    if count == 0:
        return "No Intune-only record"
    return f"{count:,} Intune-only record{'' if count == 1 else 's'}"


def layout(store, settings, pathname: str, query: dict):
    estate = store.estate
    if estate is None:
        return dbc.Alert("Loading data ...", color="info")
    rows = intune_only_rows(estate)
    if rows is None:
        return html.Div(
            [
                html.H1("Intune only", className="h4"),
                dbc.Alert(
                    "No Intune source is configured: add [intune] to the configuration "
                    "to compare ConfigMgr's records with Intune's.",
                    color="info",
                    id="intune-only-none",
                ),
            ]
        )
    count = len(rows)
    body = (
        html.Div(
            "Every co-managed Intune record matches a ConfigMgr record.",
            id="intune-only-empty",
            className="border rounded p-4 text-center bg-light",
        )
        if count == 0
        else dag.AgGrid(
            id="intune-only-grid",
            columnDefs=[
                {**column, "sort": "asc"} if column["field"] == "name" else column
                for column in COLUMNS
            ],
            defaultColDef={"sortable": True, "resizable": True, "filter": False},
            rowModelType="infinite",
            dashGridOptions=paged_grid_options(count),
            getRowId="params.data.key",
            style={"height": "calc(100vh - 290px)", "minHeight": "420px"},
            className="ag-theme-alpine",
        )
    )
    return html.Div(
        [
            html.Div(
                [
                    html.H1("Intune only", className="h4 mb-0 me-3"),
                    html.Span(
                        count_text(count),
                        id="intune-only-count",
                        className="fs-5 fw-semibold me-auto",
                        **{"data-count": str(count)},
                    ),
                    html.A(
                        "Export CSV",
                        id="intune-only-export",
                        href=EXPORT_PATH,
                        className="btn btn-sm btn-outline-primary",
                    ),
                ],
                className="d-flex align-items-center flex-wrap gap-2 mb-2",
            ),
            html.P(
                "Co-managed Windows records in Intune that match no ConfigMgr record: deleted "
                "from ConfigMgr or never discovered there. This list covers the whole Intune "
                "source; the site and collection filters do not apply.",
                className="small text-secondary",
            ),
            body,
        ],
        id="intune-only",
    )


def get_rows(store, request: dict | None) -> dict:
    """One block of rows for the grid: sorted and sliced on the server."""
    estate = store.estate
    if not request:
        return {"rowData": [], "rowCount": 0}
    sort, start, end_row = grid_request(request)
    column = sort.get("colId")
    if not isinstance(column, str) or column not in intune_list.SORTABLE:
        column = intune_list.DEFAULT_SORT[0]
    order = ordered_rows(estate, column, sort.get("sort") == "desc")
    if order is None:
        return {"rowData": [], "rowCount": 0}
    end = min(start + MAX_BLOCK, max(start, end_row if end_row is not None else start + PAGE_SIZE))
    rows = intune_list.rows_for(estate.intune.frame, order[start:end])
    return {"rowData": rows, "rowCount": len(order)}


def register_callbacks(app, store, settings) -> dict:
    @app.callback(
        Output("intune-only-grid", "getRowsResponse"),
        Input("intune-only-grid", "getRowsRequest"),
    )
    def intune_only_rows_callback(request):
        if request is None:
            return no_update
        return get_rows(store, request)

    return {"intune_only_rows": intune_only_rows_callback}

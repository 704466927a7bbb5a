"""The device list, ``/devices?<filters>``: every overview link lands here.

Filters come from the URL only (validated by ``model.device_query.parse_filter``) and are
shown as removable chips. The grid uses AG Grid's infinite row model: the browser asks for
one block of rows at a time and the server filters, sorts and slices, so a million-device
estate never travels to the browser.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html, no_update

from ...labels import (
    AUTHORITY_LABELS,
    FUNNEL_LABELS,
    REASON_LABELS,
    WORKLOAD_LABELS,
    enrollment_status_labels,
)
from ...model.attention import READINESS_STEPS, RULES_BY_ID
from ...model.device_columns import OPTIONAL_COLUMNS, optional_columns
from ...model.device_query import FILTER_LABELS, SORTABLE, page_rows, rows_for
from ...model.trends import CHANGE_LABELS

PATH = "/devices"
NAV_LABEL = "Devices"
PAGE_SIZE = 100
MAX_BLOCK = 500  # rows one request may ask for, whatever the client says


def _value_label(name: str, value: str, settings, estate) -> str:
    """A filter value in words, for its chip."""
    if name == "collection":
        collection_name = estate.collection_names.get(value)
        return f"{value} {collection_name}" if collection_name else value
    words = {
        "funnel": FUNNEL_LABELS,
        "enrollment_status": enrollment_status_labels(settings.status_labels),
        "workload": WORKLOAD_LABELS,
        "authority": AUTHORITY_LABELS,
        "reason": REASON_LABELS,
        "attention": {"any": "any rule", **{k: r.title for k, r in RULES_BY_ID.items()}},
        "comanaged": {"1": "yes", "0": "no"},
        "readiness": {step: label for step, label, _fix in READINESS_STEPS},
        "changed": CHANGE_LABELS,
    }.get(name, {})
    return words.get(value, value)


def devices_href(pairs: list[tuple[str, str]]) -> str:
    query = urlencode(pairs, quote_via=quote)
    return f"{PATH}?{query}" if query else PATH


PAIRED = ("changed", "since")  # one means nothing without the other: removed together


def _without(flt, name: str, value: str) -> list[tuple[str, str]]:
    pairs = flt.pairs(drop=(name, value))
    if name in PAIRED and not any(n == name for n, _v in pairs):
        pairs = [(n, v) for n, v in pairs if n not in PAIRED]
    return pairs


def chips(flt, settings, estate) -> list:
    """One removable chip per filter value: a link to the same list without it."""
    return [
        html.A(
            [html.Span(f"{FILTER_LABELS.get(name, name)}: ", className="fw-normal"),
             _value_label(name, value, settings, estate),
             html.Span(" ×", **{"aria-hidden": "true"})],
            href=devices_href(_without(flt, name, value)),
            className="badge rounded-pill text-bg-light border me-1 mb-1 "
                      "text-decoration-none filter-chip",
            title="Remove this filter", **{"data-filter": f"{name}={value}"},
        )
        for name, value in flt.pairs()
    ]


COLUMNS = [
    {"field": "name", "headerName": "Name", "cellRenderer": "DeviceLink", "minWidth": 170,
     "pinned": "left"},
    {"field": "site", "headerName": "Site", "maxWidth": 90},
    {"field": "severity", "headerName": "Severity", "sort": "desc", "maxWidth": 120,
     "cellClassRules": {"sev-high": "params.value == 'high'",
                        "sev-medium": "params.value == 'medium'",
                        "sev-low": "params.value == 'low'"}},
    {"field": "attention", "headerName": "Needs attention", "cellRenderer": "AttentionBadges",
     "sortable": False, "minWidth": 220},
    {"field": "release", "headerName": "OS release", "minWidth": 150},
    {"field": "join_type", "headerName": "Join type", "minWidth": 170},
    {"field": "state", "headerName": "State", "minWidth": 230},
    {"field": "reason", "headerName": "Why not co-managed", "minWidth": 190},
    {"field": "error_code", "headerName": "Error code", "minWidth": 120},
    {"field": "error", "headerName": "Error", "sortable": False, "minWidth": 240,
     "tooltipField": "error"},
    {"field": "client_active", "headerName": "Client active", "maxWidth": 130},
    {"field": "last_policy_request", "headerName": "Last policy request", "minWidth": 160},
]


# The column chooser's columns (none sortable: the server sorts on the default columns).
OPTIONAL_DEFS = {
    "collections": {"minWidth": 260, "tooltipField": "collections"},
    "domain": {"minWidth": 130},
    "os_group": {"minWidth": 190},
    "last_active": {"minWidth": 160},
    "policy_age_days": {"minWidth": 120, "type": "rightAligned"},
}


def column_defs(chosen: list[str] | None) -> list[dict]:
    """The grid's columns: the default ones with the chosen optional ones in chooser order
    (unknown names, e.g. from an older browser's stored choice, are ignored)."""
    chosen = set(chosen or ())
    optional = [{"field": field, "headerName": header, "sortable": False,
                 **OPTIONAL_DEFS.get(field, {})}
                for field, header in OPTIONAL_COLUMNS.items() if field in chosen]
    # right after name and site, where they are seen without scrolling sideways
    return COLUMNS[:2] + optional + COLUMNS[2:]


def column_chooser():
    """"Columns": a disclosure of labelled checkboxes, remembered per browser."""
    return html.Details([
        html.Summary("Columns", className="btn btn-sm btn-outline-secondary"),
        html.Div([
            dbc.Checklist(id="devices-column-choice", value=[],
                          options=[{"label": header, "value": field}
                                   for field, header in OPTIONAL_COLUMNS.items()],
                          className="small"),
            html.Div("Primary user and hardware scan time are not in the ConfigMgr export.",
                     className="small text-secondary mt-1"),
        ], className="card card-body shadow-sm p-2 column-chooser-menu"),
    ], className="column-chooser", id="devices-columns-chooser")


def layout(store, settings, pathname: str, query: dict):
    estate = store.estate
    if estate is None:
        return dbc.Alert("Loading data ...", color="info")
    flt = store.device_filter(query)
    count = int(store.matching(flt).sum())
    export_query = urlencode(flt.pairs(), quote_via=quote)
    notice = []
    if flt.rejected:
        notice = [dbc.Alert(["Ignored filters: ", "; ".join(flt.rejected)], color="warning",
                            className="py-2", id="devices-rejected")]
    # A plain GET form: the search lands in the URL like every other filter.
    search = html.Form(
        [*[dcc.Input(type="hidden", name=name, value=value)
           for name, value in flt.pairs() if name != "q"],
         dbc.InputGroup([
             dbc.Input(name="q", value=flt.first("q") or "", placeholder="Search device name",
                       type="search", maxLength=100, id="devices-search"),
             dbc.Button("Search", type="submit", color="secondary", outline=True),
         ], size="sm")],
        method="get", action=PATH,
    )
    return html.Div([
        html.Div([
            html.H1("Devices", className="h4 mb-0 me-3"),
            html.Span(f"{count:,} devices match", id="devices-count",
                      className="fs-5 fw-semibold me-auto", **{"data-count": str(count)}),
            html.Div(search, style={"minWidth": "320px"}),
            column_chooser(),
            html.A("Export CSV", id="devices-export",
                   href="/export/devices.csv" + (f"?{export_query}" if export_query else ""),
                   className="btn btn-sm btn-outline-primary"),
        ], className="d-flex align-items-center flex-wrap gap-2 mb-2"),
        *notice,
        html.Div(chips(flt, settings, estate) or
                 [html.Span("All devices (no filter)", className="text-muted small")],
                 id="devices-chips", className="mb-2"),
        dcc.Store(id="devices-query", data=flt.pairs()),
        dcc.Store(id="devices-columns", storage_type="local"),
        dag.AgGrid(
            id="devices-grid",
            columnDefs=COLUMNS,
            defaultColDef={"sortable": True, "resizable": True, "filter": False},
            rowModelType="infinite",
            dashGridOptions={
                "pagination": True, "paginationPageSize": PAGE_SIZE,
                "paginationPageSizeSelector": False,
                "cacheBlockSize": PAGE_SIZE, "maxBlocksInCache": 5,
                "infiniteInitialRowCount": min(count, PAGE_SIZE),
                "rowBuffer": 0, "tooltipShowDelay": 300,
                # one block at a time: dash-ag-grid answers only the latest request, so a
                # second concurrent request would leave a block empty
                "maxConcurrentDatasourceRequests": 1,
                # cells take focus: the grid is one Tab stop, arrow keys move between
                # cells and Enter opens a row's device (assets/87-grid-keys.js); with
                # focus suppressed, Tab jumped from the header to the pager and no device
                # could be reached from the keyboard
                "suppressCellFocus": False,
            },
            getRowId="params.data.key",
            style={"height": "calc(100vh - 290px)", "minHeight": "420px"},
            className="ag-theme-alpine",
        ),
    ])


def get_rows(store, request: dict | None, pairs: list) -> dict:
    """One block of rows for the grid: filter, sort and slice on the server."""
    estate = store.estate
    if estate is None or not request:
        return {"rowData": [], "rowCount": 0}
    query: dict[str, list[str]] = {}
    for name, value in pairs or []:
        query.setdefault(name, []).append(value)
    flt = store.device_filter(query)
    mask = store.matching(flt)
    sort = (request.get("sortModel") or [{"colId": "severity", "sort": "desc"}])[0]
    column = sort.get("colId") if sort.get("colId") in SORTABLE else "severity"
    start = max(0, int(request.get("startRow") or 0))
    end = min(start + MAX_BLOCK, max(start, int(request.get("endRow") or start + PAGE_SIZE)))
    positions = page_rows(estate.sort_order(column, sort.get("sort") == "desc"), mask,
                          start, end)
    rows = rows_for(estate.devices, positions, store.settings.status_labels)
    memberships = {estate.collection_names.get(cid) or cid: estate.collection_mask(cid)
                   for cid in store.settings.collections}
    for row, extra in zip(rows, optional_columns(estate.devices, positions, estate.data_as_of,
                                                 memberships), strict=True):
        row.update(extra)
    for row in rows:
        row["key"] = f"{row['site']}:{row['resource_id']}"
        row["attention"] = [{"id": rule, "severity": RULES_BY_ID[rule].severity}
                            for rule in row["attention"].split(", ") if rule]
    return {"rowData": rows, "rowCount": int(mask.sum())}


def register_callbacks(app, store, settings) -> dict:
    @app.callback(Output("devices-grid", "getRowsResponse"),
                  Input("devices-grid", "getRowsRequest"),
                  State("devices-query", "data"))
    def devices_rows(request, pairs):
        if request is None:
            return no_update
        return get_rows(store, request, pairs)

    @app.callback(Output("devices-columns", "data"),
                  Output("devices-column-choice", "value"),
                  Input("devices-column-choice", "value"),
                  Input("devices-columns", "modified_timestamp"),
                  State("devices-columns", "data"))
    def devices_columns(chosen, _stored_at, stored):
        return remember_columns(ctx.triggered_id, chosen, stored)

    @app.callback(Output("devices-grid", "columnDefs"),
                  Input("devices-column-choice", "value"), prevent_initial_call=True)
    def devices_column_defs(chosen):
        return column_defs(chosen)

    return {"devices_rows": devices_rows, "devices_columns": devices_columns,
            "devices_column_defs": devices_column_defs}


def remember_columns(trigger: str | None, chosen, stored):
    """(stored choice, checkboxes): a click stores the choice in the browser; opening the page
    (the store's first read) sets the checkboxes from what was stored."""
    if trigger == "devices-column-choice":
        valid = [field for field in (chosen or []) if field in OPTIONAL_COLUMNS]
        return valid, no_update
    valid = [field for field in (stored or []) if field in OPTIONAL_COLUMNS] \
        if isinstance(stored, list) else []
    return no_update, valid

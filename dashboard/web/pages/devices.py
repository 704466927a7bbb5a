"""The device list, ``/devices?<filters>``: every overview link lands here.

Filters come from the URL only (validated by ``model.device_query.parse_filter``) and are
shown as removable chips. The grid uses AG Grid's infinite row model: the browser asks for
one block of rows at a time and the server filters, sorts and slices, so a million-device
estate never travels to the browser.
"""

from __future__ import annotations

import copy
from urllib.parse import quote, urlencode

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, ctx, dcc, html, no_update

from ...intune_labels import COMPLIANCE_LABELS, INTUNE_STATE_LABELS
from ...labels import (
    AUTHORITY_LABELS,
    FUNNEL_LABELS,
    REASON_LABELS,
    WORKLOAD_LABELS,
    enrollment_status_labels,
)
from ...model.attention import READINESS_STEPS, RULES_BY_ID
from ...model.device_columns import OPTIONAL_COLUMNS, optional_columns
from ...model.device_query import (
    FILTER_LABELS,
    FILTER_NAMES,
    MAX_FILTER_VALUES,
    SORTABLE,
    FilterTooLarge,
    page_rows,
    rows_for,
)
from ...model.trends import CHANGE_LABELS
from ..gate import BadInput

PATH = "/devices"
NAV_LABEL = "Devices"
PAGE_SIZE = 100
MAX_BLOCK = 500  # rows one request may ask for, whatever the client says
# The list's own state in its URL, beside the filters: ``sort=name`` (ascending) or
# ``sort=-name`` (descending), ``page=3`` (1-based). Back from a device, a bookmark or a
# shared link shows the same rows (``assets/51-devices-state.js`` keeps them current).
DEFAULT_SORT = ("severity", True)
STATE_KEYS = ("sort", "page")
MAX_PAGE = 1_000_000


def list_state(query: dict) -> tuple[tuple[str, bool], int]:
    """((column, descending), page) from a URL query; anything unreadable is the default."""

    def last(key: str):
        values = query.get(key) or []
        values = [values] if isinstance(values, str) else values
        return str(values[-1]).strip() if values else ""

    text = last("sort")
    column, descending = (text[1:], True) if text.startswith("-") else (text, False)
    sort = (column, descending) if column in SORTABLE else DEFAULT_SORT
    page = last("page")
    page = int(page) if page.isdigit() and 0 < int(page) <= MAX_PAGE else 1
    return sort, page


def state_pairs(sort: tuple[str, bool], page: int) -> list[tuple[str, str]]:
    """The list state as URL pairs, leaving out the defaults."""
    pairs = []
    if sort != DEFAULT_SORT:
        pairs.append(("sort", ("-" if sort[1] else "") + sort[0]))
    if page > 1:
        pairs.append(("page", str(page)))
    return pairs


def list_query(query: dict) -> str:
    """A device-list query string cut down to the list's own parameters (its filters, sort
    and page), each value bounded: what a device page's link back to its list carries."""
    pairs = [
        (name, str(value)[:200])
        for name in (*FILTER_NAMES, *STATE_KEYS)
        for value in (query.get(name) or [])[:20]
    ]
    return urlencode(pairs, quote_via=quote)


def count_text(count: int) -> str:
    if count == 0:
        return "No device matches"
    return f"{count:,} device{' matches' if count == 1 else 's match'}"


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
        "client": {"1": "installed", "0": "not installed"},
        "readiness": {step: label for step, label, _fix in READINESS_STEPS},
        "changed": CHANGE_LABELS,
        "intune": INTUNE_STATE_LABELS,
        "compliance": COMPLIANCE_LABELS,
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
            [
                html.Span(f"{FILTER_LABELS.get(name, name)}: ", className="fw-normal"),
                _value_label(name, value, settings, estate),
                html.Span(" ×", **{"aria-hidden": "true"}),
            ],
            href=devices_href(_without(flt, name, value)),
            className="badge rounded-pill text-bg-light border me-1 mb-1 "
            "text-decoration-none filter-chip",
            title="Remove this filter",
            **{"data-filter": f"{name}={value}"},
        )
        for name, value in flt.pairs()
    ]


COLUMNS = [
    {
        "field": "name",
        "headerName": "Name",
        "cellRenderer": "DeviceLink",
        "minWidth": 170,
        "pinned": "left",
    },
    {"field": "site", "headerName": "Site", "maxWidth": 90},
    {
        "field": "severity",
        "headerName": "Severity",
        "sort": "desc",
        "maxWidth": 120,
        "cellClassRules": {
            "sev-high": "params.value == 'high'",
            "sev-medium": "params.value == 'medium'",
            "sev-low": "params.value == 'low'",
        },
    },
    {
        "field": "attention",
        "headerName": "Needs attention",
        "cellRenderer": "AttentionBadges",
        "sortable": False,
        "minWidth": 220,
    },
    {"field": "release", "headerName": "OS release", "minWidth": 150},
    {"field": "join_type", "headerName": "Join type", "minWidth": 170},
    {"field": "state", "headerName": "State", "minWidth": 230},
    {"field": "reason", "headerName": "Why not co-managed", "minWidth": 190},
    {"field": "error_code", "headerName": "Error code", "minWidth": 120},
    {
        "field": "error",
        "headerName": "Error",
        "sortable": False,
        "minWidth": 240,
        "tooltipField": "error",
    },
    {"field": "client_active", "headerName": "Client active", "maxWidth": 130},
    {"field": "last_policy_request", "headerName": "Last policy request", "minWidth": 160},
]


def _columns(sort: tuple[str, bool]) -> list[dict]:
    columns = copy.deepcopy(COLUMNS)
    for column in columns:
        column.pop("sort", None)
        if column["field"] == sort[0]:
            column["sort"] = "desc" if sort[1] else "asc"
    return columns


# The column chooser's columns (none sortable: the server sorts on the default columns).
OPTIONAL_DEFS = {
    "collections": {"minWidth": 260, "tooltipField": "collections"},
    "domain": {"minWidth": 130},
    "os_group": {"minWidth": 190},
    "last_active": {"minWidth": 160},
    "policy_age_days": {"minWidth": 120, "type": "rightAligned"},
}


def column_defs(chosen: list[str] | None, current: list[dict] | None = None) -> list[dict]:
    """The grid's columns: the default ones (``current``'s, which carry the sort) with the
    chosen optional ones in chooser order (unknown names, e.g. from an older browser's stored
    choice, are ignored)."""
    chosen = set(chosen or ())
    base = [c for c in (current or COLUMNS) if c.get("field") not in OPTIONAL_COLUMNS]
    optional = [
        {"field": field, "headerName": header, "sortable": False, **OPTIONAL_DEFS.get(field, {})}
        for field, header in OPTIONAL_COLUMNS.items()
        if field in chosen
    ]
    # right after name and site, where they are seen without scrolling sideways
    return base[:2] + optional + base[2:]


def column_chooser():
    """ "Columns": a disclosure of labelled checkboxes, remembered per browser."""
    return html.Details(
        [
            html.Summary("Columns", className="btn btn-sm btn-outline-secondary"),
            html.Div(
                [
                    dbc.Checklist(
                        id="devices-column-choice",
                        value=[],
                        options=[
                            {"label": header, "value": field}
                            for field, header in OPTIONAL_COLUMNS.items()
                        ],
                        className="small",
                    ),
                    html.Div(
                        "Primary user and hardware scan time are not in the ConfigMgr export.",
                        className="small text-secondary mt-1",
                    ),
                ],
                className="card card-body shadow-sm p-2 column-chooser-menu",
            ),
        ],
        className="column-chooser",
        id="devices-columns-chooser",
    )


def paged_grid_options(count: int) -> dict:
    """AG Grid's options for a list paged on the server (the device list, the Intune-only
    list): ``count`` rows in all, asked for one page-sized block at a time."""
    return {
        "pagination": True,
        "paginationPageSize": PAGE_SIZE,
        "paginationPageSizeSelector": False,
        "cacheBlockSize": PAGE_SIZE,
        "maxBlocksInCache": 5,
        # the whole count is known: every page exists from the start (a page from the
        # URL can be opened before the first block arrives)
        "infiniteInitialRowCount": count,
        "rowBuffer": 0,
        # one block at a time: dash-ag-grid answers only the latest request, so a
        # second concurrent request would leave a block empty
        "maxConcurrentDatasourceRequests": 1,
        # cells take focus: the grid is one Tab stop, arrow keys move between
        # cells and Enter opens a row (assets/87-grid-keys.js); with focus
        # suppressed, Tab jumped from the header to the pager and no row could be
        # reached from the keyboard
        "suppressCellFocus": False,
    }


def _grid(count: int, sort: tuple[str, bool], page: int):
    if count == 0:  # an empty infinite grid shows "1 to ? of more": say it instead
        return html.Div(
            [
                html.P("No device matches these filters.", className="mb-1 fw-semibold"),
                html.P(
                    "Remove a filter above (its ×) or change the search.",
                    className="mb-0 small text-secondary",
                ),
            ],
            id="devices-empty",
            className="border rounded p-4 text-center bg-light",
        )
    last_page = max(1, -(-count // PAGE_SIZE))
    return dag.AgGrid(
        id="devices-grid",
        columnDefs=_columns(sort),
        defaultColDef={"sortable": True, "resizable": True, "filter": False},
        rowModelType="infinite",
        dashGridOptions={**paged_grid_options(count), "tooltipShowDelay": 300},
        paginationGoTo=min(page, last_page) - 1 if page > 1 else None,
        getRowId="params.data.key",
        style={"height": "calc(100vh - 290px)", "minHeight": "420px"},
        className="ag-theme-alpine",
    )


def layout(store, settings, pathname: str, query: dict):
    estate = store.estate
    if estate is None:
        return dbc.Alert("Loading data ...", color="info")
    sort, page = list_state(query)
    flt = store.device_filter({k: v for k, v in query.items() if k not in STATE_KEYS})
    count = int(store.matching(flt).sum())
    export_query = urlencode(flt.pairs(), quote_via=quote)
    notice = []
    if flt.rejected:
        notice = [
            dbc.Alert(
                ["Ignored filters: ", "; ".join(flt.rejected)],
                color="warning",
                className="py-2",
                id="devices-rejected",
            )
        ]
    # A plain GET form: the search lands in the URL like every other filter.
    search = html.Form(
        [
            *[
                dcc.Input(type="hidden", name=name, value=value)
                for name, value in flt.pairs() + state_pairs(sort, 1)
                if name != "q"
            ],
            dbc.InputGroup(
                [
                    dbc.Input(
                        name="q",
                        value=flt.first("q") or "",
                        placeholder="Search device name",
                        type="search",
                        maxLength=100,
                        id="devices-search",
                    ),
                    dbc.Button("Search", type="submit", color="secondary", outline=True),
                ],
                size="sm",
            ),
        ],
        method="get",
        action=PATH,
    )
    return html.Div(
        [
            html.Div(
                [
                    html.H1("Devices", className="h4 mb-0 me-3"),
                    html.Span(
                        count_text(count),
                        id="devices-count",
                        className="fs-5 fw-semibold me-auto",
                        **{"data-count": str(count)},
                    ),
                    html.Div(search, style={"minWidth": "320px"}),
                    column_chooser() if count else None,  # no grid, no columns to choose
                    html.A(
                        "Export CSV",
                        id="devices-export",
                        href="/export/devices.csv" + (f"?{export_query}" if export_query else ""),
                        className="btn btn-sm btn-outline-primary",
                    ),
                ],
                className="d-flex align-items-center flex-wrap gap-2 mb-2",
            ),
            *notice,
            html.Div(
                chips(flt, settings, estate)
                or [html.Span("All devices (no filter)", className="text-muted small")],
                id="devices-chips",
                className="mb-2",
            ),
            dcc.Store(id="devices-query", data=flt.pairs()),
            dcc.Store(id="devices-state"),
            dcc.Store(id="devices-columns", storage_type="local") if count else None,
            _grid(count, sort, page),
        ]
    )


def _whole(value, name: str) -> int | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value
        or abs(value) > 2**53
        or int(value) != value
    ):
        raise BadInput(f"{name} must be a whole number")
    return int(value)


def grid_request(request) -> tuple[dict, int, int | None]:
    """(first sort, start row, end row or None) of the grid's row request; ``BadInput`` for
    anything the grid itself never sends."""
    if not isinstance(request, dict):
        raise BadInput("getRowsRequest must be an object")
    model = request.get("sortModel") or [{"colId": "severity", "sort": "desc"}]
    if not isinstance(model, list) or not all(isinstance(item, dict) for item in model):
        raise BadInput("sortModel must be a list of {colId, sort} objects")
    if not isinstance(model[0].get("colId", ""), str) or not isinstance(
        model[0].get("sort", ""), str | None
    ):
        raise BadInput("sortModel: colId and sort must be text")
    start = max(0, _whole(request.get("startRow"), "startRow") or 0)
    return model[0], start, _whole(request.get("endRow"), "endRow")


def _pairs(pairs) -> list[tuple[str, str]]:
    if pairs is None:
        return []
    if isinstance(pairs, list) and len(pairs) > MAX_FILTER_VALUES * len(FILTER_NAMES):
        # more than every filter at its cap: refused before looking at each pair
        raise FilterTooLarge(
            f"too many values in the device query: {len(pairs):,} (at most "
            f"{MAX_FILTER_VALUES} per filter)"
        )
    if not isinstance(pairs, list) or not all(
        isinstance(pair, list | tuple)
        and len(pair) == 2
        and all(isinstance(part, str) for part in pair)
        for pair in pairs
    ):
        raise BadInput("the device query must be a list of [name, value] pairs")
    return [tuple(pair) for pair in pairs]


def get_rows(store, request: dict | None, pairs: list) -> dict:
    """One block of rows for the grid: filter, sort and slice on the server."""
    estate = store.estate
    if estate is None or not request:
        return {"rowData": [], "rowCount": 0}
    sort, start, end_row = grid_request(request)
    query: dict[str, list[str]] = {}
    for name, value in _pairs(pairs):
        query.setdefault(name, []).append(value)
    flt = store.device_filter(query)
    mask = store.matching(flt)
    column = sort.get("colId") if sort.get("colId") in SORTABLE else "severity"
    end = min(start + MAX_BLOCK, max(start, end_row if end_row is not None else start + PAGE_SIZE))
    positions = page_rows(estate.sort_order(column, sort.get("sort") == "desc"), mask, start, end)
    rows = rows_for(estate.devices, positions, store.settings.status_labels)
    memberships = {
        estate.collection_names.get(cid) or cid: estate.collection_mask(cid)
        for cid in store.settings.collections
    }
    for row, extra in zip(
        rows,
        optional_columns(estate.devices, positions, estate.data_as_of, memberships),
        strict=True,
    ):
        row.update(extra)
    for row in rows:
        row["key"] = f"{row['site']}:{row['resource_id']}"
        row["attention"] = [
            {"id": rule, "title": RULES_BY_ID[rule].title, "severity": RULES_BY_ID[rule].severity}
            for rule in row["attention"].split(", ")
            if rule
        ]
    return {"rowData": rows, "rowCount": int(mask.sum())}


def register_callbacks(app, store, settings) -> dict:
    @app.callback(
        Output("devices-grid", "getRowsResponse"),
        Input("devices-grid", "getRowsRequest"),
        State("devices-query", "data"),
    )
    def devices_rows(request, pairs):
        if request is None:
            return no_update
        return get_rows(store, request, pairs)

    # sort and page into the URL (replaceState: paging does not add history entries)
    app.clientside_callback(
        ClientsideFunction("devices", "keepState"),
        Output("devices-state", "data"),
        Input("devices-grid", "paginationInfo"),
        Input("devices-grid", "getRowsRequest"),
    )

    @app.callback(
        Output("devices-columns", "data"),
        Output("devices-column-choice", "value"),
        Input("devices-column-choice", "value"),
        Input("devices-columns", "modified_timestamp"),
        State("devices-columns", "data"),
    )
    def devices_columns(chosen, _stored_at, stored):
        return remember_columns(ctx.triggered_id, chosen, stored)

    @app.callback(
        Output("devices-grid", "columnDefs"),
        Input("devices-column-choice", "value"),
        State("devices-grid", "columnDefs"),
        prevent_initial_call=True,
    )
    def devices_column_defs(chosen, current):
        return column_defs(chosen, current)

    return {
        "devices_rows": devices_rows,
        "devices_columns": devices_columns,
        "devices_column_defs": devices_column_defs,
    }


def remember_columns(trigger: str | None, chosen, stored):
    """(stored choice, checkboxes): a click stores the choice in the browser; opening the page
    (the store's first read) sets the checkboxes from what was stored."""
    if trigger == "devices-column-choice":
        valid = [field for field in (chosen or []) if field in OPTIONAL_COLUMNS]
        return valid, no_update
    valid = (
        [field for field in (stored or []) if field in OPTIONAL_COLUMNS]
        if isinstance(stored, list)
        else []
    )
    return no_update, valid

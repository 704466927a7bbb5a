"""One device's page, ``/device/<ResourceID>[?site=PS1]``: what is wrong and what to do.

Every value comes from the loaded estate and is rendered as text (Dash escapes children).
ResourceIDs are unique within one hierarchy; when two configured hierarchies reuse one, the
page lists the matches and the ``site`` parameter picks one.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
from dash import html

from ...intune_labels import AGENT_LABELS, COMPLIANCE_LABELS, INTUNE_STATE_LABELS, MATCH_LABELS
from ...labels import (
    AUTHORITY_LABELS,
    FUNNEL_LABELS,
    REASON_EXPLANATIONS,
    REASON_LABELS,
    enrollment_status_labels,
    join_type_label,
)
from ...model.attention import (
    NO_KEEPER,
    READINESS_STEPS,
    RULES_BY_ID,
    readiness_advice,
    rule_ids,
)
from ...model.errors import LOG_HINTS, describe
from ...model.states import FUNNEL_STAGES
from ...settings import WORKLOADS
from ..links import parse_query
from ..timeline import history_card
from .devices import list_query

PREFIX = "/device/"
_ID_RE = re.compile(r"^\d{1,19}$")


def matches(pathname: str) -> bool:
    return pathname.startswith(PREFIX)


def device_url(resource_id: int, site: str | None = None) -> str:
    return f"{PREFIX}{resource_id}" + (f"?site={quote(site)}" if site else "")


def _text(value) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return "unknown"
    if isinstance(value, float) and value != value:
        return "unknown"
    return str(value)


def _flag(value) -> str:
    if value is None or value != value:
        return "unknown"
    return "yes" if value == 1 else "no"


def _date(value) -> str:
    return "unknown" if pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


def _facts(title: str, rows: list[tuple[str, str]], card_id: str | None = None):
    return dbc.Card(
        [
            dbc.CardHeader(title, className="fw-semibold"),
            dbc.CardBody(
                html.Dl(
                    [
                        part
                        for label, value in rows
                        for part in (
                            html.Dt(label, className="col-sm-5 text-muted fw-normal"),
                            html.Dd(value, className="col-sm-7 mb-1"),
                        )
                    ],
                    className="row mb-0 small",
                )
            ),
        ],
        className="h-100",
        **({"id": card_id} if card_id else {}),
    )


def back_to_list(query: dict) -> str:
    """The list the device was opened from (``list``: that list's query string, cut down to
    the list's own parameters), else the whole list."""
    lists = query.get("list") or []
    text = list_query(parse_query(lists[-1])) if lists and isinstance(lists[-1], str) else ""
    return "/devices" + (f"?{text}" if text else "")


def not_found(message: str):
    return html.Div(
        [
            html.H1("Device not found", className="h4"),
            html.P(message),
            html.A("Back to the device list", href="/devices", className="btn btn-outline-primary"),
        ],
        className="py-4",
        id="device-not-found",
    )


def _checklist(device: pd.Series) -> list:
    failed_step = device["readiness"]
    failed_step = None if pd.isna(failed_step) else str(failed_step)
    reason = None if pd.isna(device["reason"]) else str(device["reason"])
    items, reached_failure = [], False
    for step, label, _fix in READINESS_STEPS:
        if step == failed_step:
            reached_failure = True
            fix = readiness_advice(step, reason)
            items.append(
                html.Li(
                    [
                        html.Span("✗ ", className="text-failure fw-bold"),
                        label,
                        html.Div(["What to do: ", fix], className="small ms-3"),
                    ],
                    className="list-group-item",
                    **{"data-step": step, "data-result": "fail"},
                )
            )
        elif reached_failure:
            items.append(
                html.Li(
                    [
                        html.Span("· ", className="text-muted"),
                        label,
                        html.Span(
                            " (not checked: an earlier step failed)", className="text-muted small"
                        ),
                    ],
                    className="list-group-item text-muted",
                    **{"data-step": step, "data-result": "skipped"},
                )
            )
        else:
            items.append(
                html.Li(
                    [html.Span("✓ ", className="text-success fw-bold"), label],
                    className="list-group-item",
                    **{"data-step": step, "data-result": "pass"},
                )
            )
    return items


def _workloads(device: pd.Series, settings) -> html.Table:
    bits = device["MDMWorkloads"]
    rows = []
    for key, (bit, label) in WORKLOADS.items():
        authority = device[f"wl_{key}"]
        stage = settings.workload(key).stage
        shown = "— (not co-managed)" if pd.isna(authority) else AUTHORITY_LABELS[str(authority)]
        note = ""
        if key == "device_configuration":
            note = (
                "In the console, moving device configuration also moves resource access "
                "and Endpoint Protection."
            )
        if device.get(f"lag_{key}", False):
            note = "In the pilot of a moved workload, but the device still reports ConfigMgr."
        rows.append(
            html.Tr(
                [
                    html.Td(label),
                    html.Td(shown, className="fw-semibold"),
                    html.Td(
                        f"bit {bit} "
                        + ("set" if (not pd.isna(bits) and int(bits) & bit) else "clear"),
                        className="text-muted",
                    ),
                    html.Td(
                        {
                            "configmgr": "Configuration Manager",
                            "pilot": "Pilot Intune",
                            "intune": "Intune",
                        }[stage],
                        className="text-muted",
                    ),
                    html.Td(note, className="small"),
                ]
            )
        )
    return dbc.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th("Workload"),
                        html.Th("Authority on this device"),
                        html.Th("MDMWorkloads"),
                        html.Th("Configured stage"),
                        html.Th(""),
                    ]
                )
            ),
            html.Tbody(rows),
        ],
        size="sm",
        hover=True,
        className="mb-0",
        id="device-workloads",
    )


def _error(device: pd.Series):
    if not device["failed"]:
        code = device["EnrollmentStatusCode"]
        if pd.isna(code) or code is None:
            return html.P("No enrollment error.", className="text-muted mb-0")
        return html.P(
            f"Last status code {code} (the device is not in a failed state).",
            className="text-muted mb-0",
        )
    code = str(device["error_code"])
    detail = device["EnrollmentErrorDetail"]
    info = describe(code, None if pd.isna(detail) else str(detail))
    rows = [
        ("Code", code),
        ("Meaning", info.description),
        ("Fix", info.fix),
        ("Transient", "yes: the client retries by itself" if info.transient else "no"),
    ]
    if not pd.isna(detail) and detail:
        rows.append(("Detail reported", str(detail)))
    return html.Div(
        [
            html.Dl(
                [
                    part
                    for label, value in rows
                    for part in (
                        html.Dt(label, className="col-sm-3 text-muted fw-normal"),
                        html.Dd(value, className="col-sm-9 mb-1"),
                    )
                ],
                className="row small",
                id="device-error",
            ),
            html.Div("Client logs to read:", className="small fw-semibold"),
            html.Ul([html.Li(hint) for hint in LOG_HINTS], className="small mb-0"),
        ]
    )


def _attention(device: pd.Series) -> list:
    rules = rule_ids(int(device["attention"]))
    if not rules:
        return [
            html.Li(
                "Nothing needs attention on this device.",  # a list holds items only
                className="list-group-item text-muted",
            )
        ]
    items = []
    for rule_id in rules:
        rule = RULES_BY_ID[rule_id]
        fix = rule.fix
        if rule_id == "enrollment-failed":
            fix = describe(str(device["error_code"])).fix
        items.append(
            html.Li(
                [
                    html.Span(rule.severity, className=f"badge sev-{rule.severity} me-2"),
                    html.Span(rule.title, className="fw-semibold"),
                    html.Div(rule.explanation, className="small text-muted"),
                    html.Div(["Fix: ", fix], className="small"),
                ],
                className="list-group-item",
                **{"data-rule": rule_id},
            )
        )
    return items


def _intune(estate, device: pd.Series):
    """Intune's record of this device beside the ConfigMgr facts (the most recently synced
    of its matching records); None when the estate has no Intune source."""
    records = estate.intune
    if records is None or "intune_state" not in device.index:
        return None
    state = device["intune_state"]
    compliance = device.get("intune_compliance")
    rows = [
        (
            "Reconciliation",
            "No state (not enrolled in ConfigMgr's view, and no co-managed Intune record)"
            if pd.isna(state)
            else INTUNE_STATE_LABELS[str(state)],
        ),
    ]
    if not pd.isna(compliance):
        rows.append(("Compliance (co-managed)", COMPLIANCE_LABELS.get(str(compliance), "")))
    row = int(device["intune_row"]) if not pd.isna(device["intune_row"]) else -1
    match = device["intune_match"]
    if row < 0 or pd.isna(match):
        rows.append(("Matched", "No matching Intune record"))
        return _facts("Intune", rows, "device-intune")
    record = records.frame.iloc[row]
    agent = _text(record["managementAgent"])
    synced, evaluated = record["lastSyncDateTime"], _text(record["complianceState"])
    rows += [
        ("Matched", MATCH_LABELS[str(match)]),
        ("Name", _text(record["deviceName"])),
        ("Intune device ID", _text(record["id"])),
        ("Agent", AGENT_LABELS.get(agent, agent)),
        ("Last sync", "never" if pd.isna(synced) else _date(synced)),
        ("Compliance state", COMPLIANCE_LABELS.get(evaluated, evaluated)),
        ("Primary user", _text(record["userPrincipalName"])),
        ("Enrolled", _date(record["enrolledDateTime"])),
    ]
    return _facts("Intune", rows, "device-intune")


def _record_link(devices: pd.DataFrame, position: int, link_id: str | None = None):
    name = _text(devices["Name"].iat[position])
    rid = int(devices["ResourceID"].iat[position])
    extra = {"id": link_id} if link_id else {}
    return html.A(
        f"{name} (ResourceID {rid})",
        href=device_url(rid, str(devices["site"].iat[position])),
        **extra,
    )


def _duplicates(devices: pd.DataFrame, position: int):
    """The card naming the record kept for this name, or this keeper's duplicates (the
    ``duplicate-record`` rule); None when the record's name is unique in its site."""
    if "duplicate_of" not in devices.columns:
        return None
    keepers = devices["duplicate_of"].to_numpy()
    same_site = (devices["site"] == devices["site"].iat[position]).to_numpy()
    keeper_id = int(keepers[position])
    if keeper_id != NO_KEEPER:
        found = np.flatnonzero(same_site & (devices["ResourceID"].to_numpy() == keeper_id))
        body = [
            html.P(
                [
                    "This record is a duplicate: another record of site ",
                    _text(devices["site"].iat[position]),
                    " has the same name (ignoring case) and is the one to keep: ",
                    _record_link(devices, int(found[0]), "device-keeper")
                    if len(found)
                    else f"ResourceID {keeper_id}",
                    ".",
                ],
                className="mb-1",
            ),
            html.P(["Fix: ", RULES_BY_ID["duplicate-record"].fix], className="small mb-0"),
        ]
    else:
        others = np.flatnonzero(same_site & (keepers == int(devices["ResourceID"].iat[position])))
        if not len(others):
            return None
        body = [
            html.P(
                "This is the record to keep for its name. Other records of its site "
                "with the same name (ignoring case), stale duplicates to delete:",
                className="mb-1",
            ),
            html.Ul(
                [html.Li(_record_link(devices, int(other))) for other in others],
                className="small mb-0",
                id="device-duplicate-list",
            ),
        ]
    return dbc.Card(
        [dbc.CardHeader("Duplicate records", className="fw-semibold"), dbc.CardBody(body)],
        className="mb-3",
        id="device-duplicates",
    )


def layout(store, settings, pathname: str, query: dict):
    estate = store.estate
    if estate is None:
        return dbc.Alert("Loading data ...", color="info")
    raw_id = pathname[len(PREFIX) :].strip("/")
    if not _ID_RE.match(raw_id):
        return not_found(
            "A device's address is /device/ followed by its ResourceID (a whole number)."
        )
    devices = estate.devices
    positions = (devices["ResourceID"] == int(raw_id)).to_numpy().nonzero()[0]
    site = (
        (query.get("site") or [None])[-1]
        if isinstance(query.get("site"), list)
        else query.get("site")
    )
    if site:
        positions = [p for p in positions if str(devices["site"].iat[p]) == site]
    if len(positions) == 0:
        return not_found(
            f"No device with ResourceID {raw_id} in the loaded data"
            + (f" for site {site}." if site else ".")
        )
    if len(positions) > 1:
        return html.Div(
            [
                html.H1(f"ResourceID {raw_id} exists in several sites", className="h4"),
                html.Ul(
                    [
                        html.Li(
                            html.A(
                                f"{devices['Name'].iat[p]} ({devices['site'].iat[p]})",
                                href=device_url(int(raw_id), str(devices["site"].iat[p])),
                            )
                        )
                        for p in positions
                    ]
                ),
            ]
        )
    position = int(positions[0])
    device = devices.iloc[position]
    wording = settings.status_labels
    status = device["enrollment_status"]
    state = (
        "Not targeted by co-management"
        if pd.isna(status)
        else enrollment_status_labels(wording)[str(status)]
    )
    funnel = device["funnel"]
    reached = [] if pd.isna(funnel) else list(FUNNEL_STAGES[: FUNNEL_STAGES.index(str(funnel)) + 1])
    reason = device["reason"]
    collections = estate.device_collections(position)

    header = html.Div(
        [
            html.H1(_text(device["Name"]), className="h3 mb-0", id="device-name"),
            html.Span(state, className="badge text-bg-secondary fs-6 ms-3", id="device-state"),
        ],
        className="d-flex align-items-center flex-wrap mb-3",
    )
    identity = _facts(
        "Identity",
        [
            ("Name", _text(device["Name"])),
            ("Site", _text(device["site"])),
            ("ResourceID", str(int(device["ResourceID"]))),
            ("Domain", _text(device["Domain"])),
            ("Entra device ID", _text(device["AADDeviceID"])),
            (
                "Join type",
                join_type_label(str(device["join_type"]), wording)
                if device["joined"]
                else "Not joined to Entra ID",
            ),
        ],
    )
    system = _facts(
        "Operating system",
        [
            ("OS", _text(device["OperatingSystem"])),
            ("Build", _text(device["Build"])),
            ("Release", _text(device["os_release"])),
            ("OS group", _text(device["os_group"])),
        ],
    )
    client = _facts(
        "ConfigMgr client",
        [
            ("Installed", _flag(device["ClientInstalled"])),
            ("Version", _text(device["ClientVersion"])),
            ("Active", _flag(device["ClientActive"])),
            ("Last policy request", _date(device["LastPolicyRequest"])),
            ("Last active", _date(device["LastActiveTime"])),
        ],
    )
    comanagement = _facts(
        "Co-management",
        [
            ("Co-managed", "yes" if device["comanaged"] else "no"),
            ("Enrollment status", state),
            (
                "Funnel",
                " > ".join(FUNNEL_LABELS[s] for s in reached) if reached else "Not eligible",
            ),
            (
                "Why not co-managed",
                ""
                if pd.isna(reason)
                else f"{REASON_LABELS[str(reason)]}: {REASON_EXPLANATIONS[str(reason)]}",
            ),
        ],
    )
    intune = _intune(estate, device)
    return html.Div(
        [
            html.A("← Device list", href=back_to_list(query), className="small", id="device-back"),
            header,
            dbc.Row(
                [
                    dbc.Col(identity, md=6, lg=3, className="mb-3"),
                    dbc.Col(system, md=6, lg=3, className="mb-3"),
                    dbc.Col(client, md=6, lg=3, className="mb-3"),
                    dbc.Col(comanagement, md=6, lg=3, className="mb-3"),
                    dbc.Col(intune, md=6, lg=3, className="mb-3") if intune else None,
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Card(
                            [
                                dbc.CardHeader("Needs attention", className="fw-semibold"),
                                html.Ul(
                                    _attention(device),
                                    className="list-group list-group-flush",
                                    id="device-attention",
                                ),
                            ]
                        ),
                        lg=6,
                        className="mb-3",
                    ),
                    dbc.Col(
                        dbc.Card(
                            [
                                dbc.CardHeader(
                                    "Co-management prerequisites", className="fw-semibold"
                                ),
                                html.Ul(
                                    _checklist(device),
                                    className="list-group list-group-flush",
                                    id="device-checklist",
                                ),
                            ]
                        ),
                        lg=6,
                        className="mb-3",
                    ),
                ]
            ),
            _duplicates(devices, position),
            history_card(store, device, settings),
            dbc.Card(
                [
                    dbc.CardHeader("Enrollment error", className="fw-semibold"),
                    dbc.CardBody(_error(device)),
                ],
                className="mb-3",
            ),
            dbc.Card(
                [
                    dbc.CardHeader("Workloads", className="fw-semibold"),
                    dbc.CardBody(_workloads(device, settings)),
                ],
                className="mb-3",
            ),
            dbc.Card(
                [
                    dbc.CardHeader("Collections", className="fw-semibold"),
                    dbc.CardBody(
                        html.Ul(
                            [
                                html.Li(f"{row.CollectionID} {row.CollectionName}")
                                for row in collections.itertuples()
                            ]
                            or [
                                html.Li("No membership in the collections the configuration names.")
                            ],
                            className="small mb-0",
                            id="device-collections",
                        )
                    ),
                ],
                className="mb-3",
            ),
        ],
        id="device-page",
    )


def register_callbacks(app, store, settings) -> dict:
    """The device page is static: nothing to register."""
    return {}

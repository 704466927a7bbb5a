"""The overview's drill-down panels: devices that need attention, and co-management readiness.

Pure functions, summary dict in, Dash components out (no data access), so each panel is
unit-tested against a summary and re-rendered with the overview's other outputs. Every
number is the summary's (``attention``, ``attention_devices``, ``readiness``) and every
non-zero count is a link to the device list for exactly those devices, in the page's scope.
"""

from __future__ import annotations

from dash import dcc, html

from ..model.attention import READINESS_STEPS, RULES, SEVERITIES, shown_rules
from . import figures
from .links import attention_url, readiness_url

SEVERITY_LABELS = {"high": "High", "medium": "Medium", "low": "Low"}
# The same colours as the severity badges in assets/50-devices.css.
SEVERITY_COLORS = {
    "high": figures.COLORS["failure"],
    "medium": figures.COLORS["configmgr"],
    "low": figures.COLORS["pilot"],
}
# A failed prerequisite has the colour of the matching "why not co-managed" bar.
READINESS_FAIL_COLORS = {
    "workstation": figures.REASON_COLORS["server"],
    "os-version": figures.REASON_COLORS["os-too-old"],
    "client": figures.REASON_COLORS["no-client"],
    "client-active": figures.REASON_COLORS["no-client"],
    "joined": figures.REASON_COLORS["not-joined"],
    "policy": figures.REASON_COLORS["no-policy"],
}
READINESS_PASS_COLOR = figures.COLORS["success"]
READINESS_FIXES = {step: fix for step, _label, fix in READINESS_STEPS}


def _empty(message: str):
    return html.Div(message, className="text-secondary py-4 text-center empty-note")


def _bar(segments: list[tuple[float, str]], label: str):
    """A horizontal bar of coloured segments, ``(fraction of the track, colour)`` each."""
    return html.Div(
        [
            html.Div(
                className="dd-bar-segment",
                style={
                    "width": f"{max(0.0, min(1.0, fraction)) * 100:.2f}%",
                    "backgroundColor": color,
                },
            )
            for fraction, color in segments
            if fraction > 0
        ],
        className="dd-bar-track",
        role="img",
        **{"aria-label": label},
    )


def _count(number: int, href: str, class_name: str):
    """A count that opens the device list (zero stays plain text: nothing to list)."""
    if not number:
        return html.Span("0", className="text-secondary")
    return dcc.Link(f"{number:,}", href=href, className=f"stretched-link {class_name}")


# -- needs attention ---------------------------------------------------------------------------


def attention_panel(summary: dict | None, site: str | None, collection: str | None):
    """Devices per attention rule, grouped by severity; each count opens its device list."""
    if summary is None:
        return html.Div("-", className="text-secondary")
    devices = summary["devices"]
    if not devices:
        return _empty(figures.NO_DEVICES)
    counts = summary.get("attention") or {}
    largest = max(counts.values(), default=0) or 1
    body = []
    for severity in SEVERITIES:
        # The rules the summary counts: the Intune rules only with an Intune source.
        rules = [rule for rule in RULES if rule.severity == severity and rule.id in counts]
        if not rules:
            continue
        body.append(
            html.Tr(
                html.Th(
                    [
                        html.Span(
                            SEVERITY_LABELS[severity], className=f"badge sev-{severity} me-2"
                        ),
                        html.Span(
                            f"{len(rules)} rule{'s' if len(rules) != 1 else ''}",
                            className="small text-secondary fw-normal",
                        ),
                    ],
                    colSpan=4,
                ),
                className="dd-group",
                **{"data-severity": severity},
            )
        )
        for rule in rules:
            number = int(counts.get(rule.id, 0))
            body.append(
                html.Tr(
                    [
                        html.Td(
                            [
                                html.Span(
                                    "",
                                    className="dd-dot",
                                    style={"backgroundColor": SEVERITY_COLORS[severity]},
                                ),
                                html.Span(rule.title, className="dd-rule-title"),
                            ],
                            className="dd-label",
                        ),
                        html.Td(
                            _bar(
                                [(number / largest, SEVERITY_COLORS[severity])],
                                f"{number:,} devices",
                            ),
                            className="dd-bar-cell",
                        ),
                        html.Td(
                            _count(
                                number, attention_url(rule.id, site, collection), "attention-link"
                            ),
                            className="text-end fw-semibold dd-count",
                            **{"data-count": str(number)},
                        ),
                        html.Td(
                            figures.pct(number, devices),
                            className="text-end text-secondary text-nowrap dd-pct",
                        ),
                    ],
                    title=f"{rule.title}: {rule.explanation}",
                    className="dd-row" + ("" if number else " dd-zero"),
                    **{"data-rule": rule.id, "data-severity": severity},
                )
            )
    total = int(summary.get("attention_devices", 0))
    footer = html.Div(
        [
            html.Span(
                [
                    html.Strong(f"{total:,}"),
                    f" of {devices:,} devices "
                    f"({figures.pct(total, devices)}) match at least one rule; a device can "
                    "match several.",
                ],
                className="me-2",
            ),
            dcc.Link(
                "List them",
                href=attention_url("any", site, collection),
                className="attention-any-link text-nowrap",
            )
            if total
            else None,
        ],
        className="small text-secondary mt-2",
        id="ovw-attention-total",
        **{"data-count": str(total)},
    )
    head = html.Thead(
        html.Tr(
            [
                html.Th("Rule"),
                html.Th(html.Span("bar", className="visually-hidden")),
                html.Th("Devices", className="text-end"),
                html.Th("% of devices", className="text-end text-nowrap"),
            ]
        )
    )
    return html.Div(
        [
            html.Div(
                html.Table(
                    [head, html.Tbody(body)],
                    className="table table-sm table-hover mb-0 align-middle dd-table",
                    id="ovw-attention-table",
                ),
                className="table-responsive",
            ),
            footer,
        ]
    )


# -- readiness -------------------------------------------------------------------------------


def readiness_panel(summary: dict | None, site: str | None, collection: str | None):
    """The co-management prerequisites in order, as a waterfall of pass/fail bars.

    Each step checks the devices that passed the step before it, so the bars shrink step by
    step; a failure count opens the devices whose *first* failed prerequisite is that step.
    """
    if summary is None:
        return html.Div("-", className="text-secondary")
    devices = summary["devices"]
    if not devices:
        return _empty(figures.NO_DEVICES)
    steps = summary.get("readiness") or []
    rows = []
    for number, step in enumerate(steps, start=1):
        fail_color = READINESS_FAIL_COLORS.get(step["step"], figures.COLORS["configmgr"])
        fix = READINESS_FIXES.get(step["step"], "")
        rows.append(
            html.Tr(
                [
                    html.Td(
                        [
                            html.Span(str(number), className="dd-step-number"),
                            html.Span(step["label"], className="dd-rule-title"),
                        ],
                        className="dd-label",
                    ),
                    html.Td(
                        _bar(
                            [
                                (step["passed"] / devices, READINESS_PASS_COLOR),
                                (step["failed"] / devices, fail_color),
                            ],
                            f"{step['passed']:,} passed, {step['failed']:,} failed of "
                            f"{step['checked']:,} checked",
                        ),
                        className="dd-bar-cell",
                    ),
                    html.Td(f"{step['checked']:,}", className="text-end text-secondary dd-checked"),
                    html.Td(f"{step['passed']:,}", className="text-end dd-passed"),
                    html.Td(
                        _count(
                            step["failed"],
                            readiness_url(step["step"], site, collection),
                            "readiness-link",
                        ),
                        className="text-end fw-semibold dd-failed",
                        **{"data-count": str(step["failed"])},
                    ),
                ],
                title=f"{step['label']}. If it fails: {fix}" if fix else step["label"],
                className="dd-row" + ("" if step["failed"] else " dd-zero"),
                **{"data-step": step["step"]},
            )
        )
    ready = steps[-1]["passed"] if steps else devices
    head = html.Thead(
        html.Tr(
            [
                html.Th("Prerequisite"),
                html.Th(html.Span("bar", className="visually-hidden")),
                html.Th("Checked", className="text-end"),
                html.Th("Passed", className="text-end"),
                html.Th("Failed", className="text-end"),
            ]
        )
    )
    legend = html.Div(
        [
            html.Span(
                [html.Span(className="legend-swatch", style={"backgroundColor": color}), text],
                className="me-3 text-nowrap",
            )
            for color, text in (
                (READINESS_PASS_COLOR, "passed"),
                (figures.COLORS["configmgr"], "failed"),
                (READINESS_FAIL_COLORS["workstation"], "not a workstation"),
            )
        ],
        className="dd-legend text-secondary mt-2",
    )
    total = html.Tfoot(
        html.Tr(
            [
                html.Td(
                    [
                        html.Span("✓", className="dd-step-number dd-step-done"),
                        html.Span("Meets every prerequisite", className="dd-rule-title"),
                    ],
                    className="dd-label fw-semibold",
                ),
                html.Td(
                    _bar(
                        [(ready / devices, READINESS_PASS_COLOR)],
                        f"{ready:,} of {devices:,} devices meet every prerequisite",
                    ),
                    className="dd-bar-cell",
                ),
                html.Td(""),
                html.Td(f"{ready:,}", className="text-end fw-semibold"),
                html.Td(
                    figures.pct(ready, devices), className="text-end text-secondary text-nowrap"
                ),
            ],
            className="dd-total",
        )
    )
    footer = html.Div(
        [
            html.Strong(f"{ready:,}"),
            f" of {devices:,} devices ({figures.pct(ready, devices)}) meet every prerequisite. "
            "A failed count lists the devices stopped at that step, co-managed or not.",
        ],
        className="small text-secondary mt-1",
        id="ovw-readiness-ready",
        **{"data-count": str(ready)},
    )
    return html.Div(
        [
            html.Div(
                html.Table(
                    [head, html.Tbody(rows), total],
                    className="table table-sm table-hover mb-0 align-middle dd-table dd-steps",
                    id="ovw-readiness-table",
                ),
                className="table-responsive",
            ),
            legend,
            footer,
        ]
    )


# -- what these mean ---------------------------------------------------------------------------

# What each prerequisite checks, in the words of the readiness model (its order matters: each
# step checks only the devices that passed the steps before it).
READINESS_CHECKS = {
    "workstation": "The device is a workstation (hardware inventory's product type, else the "
    "OS name); servers are out of scope.",
    "os-version": "Windows 10 1709 (build 16299) or later, Windows 11 included.",
    "client": "The Configuration Manager client is installed.",
    "client-active": "The client's health summary says it is active. A device with no "
    "client-health data fails this step too: unknown is not active.",
    "joined": "Joined to Microsoft Entra ID, hybrid or not.",
    "policy": "The co-management policy has reached the device.",
}


def _with_thresholds(text: str, inactive_days: int, stuck_days: int) -> str:
    """A rule's explanation with its configured thresholds in days."""
    return text.replace("the threshold (stuck_days)", f"{stuck_days} days").replace(
        "longer than the threshold", f"longer than {inactive_days} days"
    )


def definitions_panel(settings, lazy: bool = False) -> object:
    """Every attention rule and every prerequisite in words, reachable without a mouse (the
    panels' row titles are hover-only), and why the two "inactive" counts differ.

    ``lazy``: the panel holds only its toggle (``ovw-definitions-toggle``) and an empty
    ``ovw-definitions-body`` that the page fills with ``definitions_body`` when it is first
    opened (what most visits never do should not slow every first draw).
    """
    body = (
        html.Div("Loading ...", className="small text-secondary mt-1")
        if lazy
        else definitions_body(settings)
    )
    return html.Details(
        [
            html.Summary(
                "What these mean: the rules and the prerequisites",
                className="fw-semibold definitions-toggle",
                id="ovw-definitions-toggle",
            ),
            html.Div(body, id="ovw-definitions-body"),
        ],
        className="card shadow-sm p-3 definitions",
        id="ovw-definitions",
    )


def definitions_body(settings):
    """The definitions panel's content (see ``definitions_panel``)."""
    days = getattr(settings, "client_inactive_days", 14)
    stuck = getattr(settings, "stuck_days", 14)
    rules = html.Dl(
        [
            item
            for rule in shown_rules(getattr(settings, "intune", None) is not None)
            for item in (
                html.Dt(
                    [
                        html.Span(
                            SEVERITY_LABELS[rule.severity],
                            className=f"badge sev-{rule.severity} me-2",
                        ),
                        rule.title,
                    ]
                ),
                html.Dd(
                    [
                        html.Div(_with_thresholds(rule.explanation, days, stuck)),
                        html.Div(["Fix: ", rule.fix], className="text-secondary"),
                    ],
                    className="mb-2",
                ),
            )
        ],
        className="mb-0 definitions-rules",
        id="ovw-definitions-rules",
    )
    steps = html.Ol(
        [
            html.Li(
                [
                    html.Strong(label),
                    ": ",
                    READINESS_CHECKS.get(step, ""),
                    html.Div(["If it fails: ", fix], className="text-secondary"),
                ],
                className="mb-1",
                **{"data-step": step},
            )
            for step, label, fix in READINESS_STEPS
        ],
        className="mb-0 definitions-steps",
        id="ovw-definitions-steps",
    )
    inactive = html.Div(
        [
            html.H3(
                "Why the prerequisite's inactive count differs from the rule's",
                className="h6 mt-3",
                id="ovw-definitions-inactive",
            ),
            html.P(
                [
                    "They answer different questions, so they count different devices. The ",
                    html.Strong("Client active"),
                    " prerequisite (step 4) is checked on every "
                    "workstation on Windows 10 1709 or later with the client installed, joined "
                    "or not, and fails when the client's health summary does not say active: "
                    "inactive ",
                    html.Em("or unknown"),
                    ". The ",
                    html.Strong("ConfigMgr client inactive"),
                    " rule looks only at devices that are co-managed or eligible (eligible needs a "
                    "join to Entra ID), and flags a client reported inactive ",
                    html.Em(f"or whose last policy request is more than {days} days old"),
                    ", even when its health summary still says active.",
                ],
                className="mb-1",
            ),
            html.P(
                "So a device that is not joined, or has no client-health data, counts in the "
                "prerequisite but not in the rule; a joined device that reports active but "
                "has stopped asking for policy counts in the rule but not in the "
                "prerequisite.",
                className="mb-0",
            ),
        ]
    )
    return html.Div(
        [
            html.Div([html.H3("Attention rules", className="h6"), rules], className="col-lg-6"),
            html.Div(
                [
                    html.H3("Co-management prerequisites, in order", className="h6"),
                    html.P(
                        "Each step checks only the devices that passed the step before; "
                        "a failed count lists the devices stopped at that step.",
                        className="text-secondary small mb-1",
                    ),
                    steps,
                    inactive,
                ],
                className="col-lg-6",
            ),
        ],
        className="row g-3 mt-1 small",
    )

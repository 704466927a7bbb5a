"""Week over week on the overview: each KPI tile's change against the week-ago snapshot, and
the "What changed" panel (newly co-managed, newly failed, fell back out of co-management).

"Week ago" is the newest snapshot at least 7 days older than the current data's day
(``HistoryStore.reference_day``): its stored aggregates for the same site and collection give
the tiles' earlier values, through the very function that computes the tiles
(``model.kpis``). The panel's counts are the device list's own counts for
``/devices?changed=<kind>&since=<day>`` in the same scope (``store.matching``), so a click
always lands on exactly that many devices.
"""

from __future__ import annotations

from datetime import date

import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from ..model.kpis import BY_ID, kpi_values
from ..model.trends import CHANGE_EXPLANATIONS, CHANGE_KINDS, CHANGE_LABELS
from .encode_once import drawn_once
from .figures import COLORS
from .links import changes_url
from .scope import checked_filters

CHANGE_GOOD = {"newly_comanaged": True, "newly_failed": False, "fell_back": False}


def day_text(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def tile_changes(
    store, summary: dict | None, site: str | None, collection: str | None
) -> dict[str, dict]:
    """Tile id -> {delta, previous, day}: the change since the week-ago snapshot for the
    same scope; empty without such a snapshot."""
    if summary is None or getattr(store, "history", None) is None:
        return {}
    day = store.week_ago()
    if day is None:
        return {}
    previous = store.past_summary(day, site, collection)
    if previous is None:
        return {}
    now, then = kpi_values(summary), kpi_values(previous)
    return {
        tile: {
            "delta": int(now[tile][0]) - int(then[tile][0]),
            "previous": int(then[tile][0]),
            "day": day,
        }
        for tile in now
    }


def change_line(tile_id: str, change: dict | None):
    """``▲ +95 since 16 Nov 2026``: arrow and signed number in text, colour only added."""
    if not change:
        return None
    delta, day = change["delta"], change["day"]
    if delta == 0:
        arrow, words, tone = "=", "no change", "text-secondary"
    else:
        up = delta > 0
        arrow, words = ("▲", "up") if up else ("▼", "down")
        good = BY_ID[tile_id].good
        tone = (
            "text-secondary"
            if good is None
            else ("kpi-change-good" if (good == "up") == up else "kpi-change-bad")
        )
    title = (
        f"{words.capitalize()} {abs(delta):,} since the snapshot of {day.isoformat()} "
        f"({change['previous']:,} then)"
    )
    return html.Div(
        [
            html.Span(arrow, **{"aria-hidden": "true"}, className="me-1"),
            html.Span(words + " ", className="visually-hidden"),
            html.Span(f"{delta:+,}" if delta else "no change", className="fw-semibold"),
            html.Span(f" since {day_text(day)}", className="text-secondary"),
        ],
        className=f"small kpi-change {tone}",
        title=title,
        id=f"{tile_id}-change",
        **{"data-delta": str(delta), "data-since": day.isoformat()},
    )


def change_counts(store, day: date, site: str | None, collection: str | None) -> dict[str, int]:
    """Per change kind, how many devices of the scope changed that way since ``day``: the
    device list's count for the panel's link."""
    counts = {}
    for kind in CHANGE_KINDS:
        query = {"changed": [kind], "since": [day.isoformat()]}
        if site:
            query["site"] = [site]
        if collection:
            query["collection"] = [collection]
        flt = store.device_filter(query)
        counts[kind] = int(store.matching(flt).sum()) if not flt.rejected else 0
    return counts


def changes_panel(store, settings, site, collection):
    """The "What changed" card for a (validated) scope: the same for everyone until the data
    changes, so drawn once per loaded estate and scope."""
    site, collection, _notes = checked_filters(store, settings, site, collection)
    return drawn_once(
        store,
        ("changes-panel", site, collection),
        lambda: _changes_panel(store, settings, site, collection),
    )


def _changes_panel(store, settings, site, collection):
    header = [html.H2("What changed", className="h6 mb-0 fw-semibold")]
    if store.estate is None:
        return None
    if getattr(store, "history", None) is None:
        body = html.Div(
            "History is off: no week-over-week changes.",
            className="text-secondary small",
            id="chg-none",
        )
        return _card([*header, _subtitle("")], body)
    day = store.week_ago(with_devices=True)
    if day is None:
        body = html.Div(
            "No snapshot a week or more older than the current data yet: changes "
            "appear once history covers a week.",
            className="text-secondary small",
            id="chg-none",
        )
        return _card([*header, _subtitle("")], body)
    counts = change_counts(store, day, site, collection)
    items = []
    for kind in CHANGE_KINDS:
        count = counts[kind]
        good = CHANGE_GOOD[kind]
        color = COLORS["success"] if good else COLORS["failure"]
        items.append(
            html.Div(
                dcc.Link(
                    dbc.Card(
                        dbc.CardBody(
                            [
                                html.Div(
                                    [
                                        html.Span(
                                            f"{count:,}",
                                            className="kpi-value fw-semibold me-2",
                                            id=f"chg-{kind}",
                                            **{"data-count": str(count)},
                                        ),
                                        html.Span(CHANGE_LABELS[kind], className="fw-semibold"),
                                    ],
                                    className="d-flex align-items-baseline flex-wrap",
                                ),
                                html.Div(
                                    CHANGE_EXPLANATIONS[kind], className="small text-secondary"
                                ),
                            ],
                            className="py-2",
                        ),
                        className="h-100 kpi-card shadow-none",
                        style={"borderLeft": f"4px solid {color}"},
                    ),
                    href=changes_url(kind, day, site, collection),
                    id=f"chg-{kind}-link",
                    className="text-reset text-decoration-none kpi-link",
                    title=f"{CHANGE_LABELS[kind]} since {day.isoformat()}: open the device list",
                ),
                className="col",
            )
        )
    subtitle = _subtitle(f"Since the snapshot of {day_text(day)}, in this view")
    return _card(
        [*header, subtitle],
        html.Div(
            items,
            className="row row-cols-1 row-cols-md-3 g-3",
            id="chg-items",
            **{"data-since": day.isoformat()},
        ),
    )


def _subtitle(text: str):
    return html.Div(text, className="small text-secondary", id="chg-since")


def _card(header: list, body):
    return dbc.Card(
        [
            dbc.CardHeader(header, className="bg-white border-bottom-0 pb-0"),
            dbc.CardBody(body, className="pt-2"),
        ],
        className="shadow-sm",
        id="chg-card",
    )


def register(app, store, settings) -> dict:
    """The panel's callback (on the overview: ``ovw-changes``)."""

    @app.callback(
        Output("ovw-changes", "children"),
        Input("ovw-site", "value"),
        Input("ovw-collection", "value"),
        Input("data-version", "data"),
        prevent_initial_call=True,  # the page's layout draws it for the first visit
    )
    def _changes(site, collection, _version):
        return changes_panel(store, settings, site, collection)

    return {"changes": _changes}

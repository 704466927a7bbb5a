"""The weekly report's e-mail: its HTML summary (``co-management-<week>.html``) and sending it.

The summary is built from the figures of ``figures.weekly_figures`` (what the report page
shows): the same figures as ``comanage-dashboard summary`` for the report's scope, the
week-over-week changes and the top attention rules. Made for mail clients: inline styles only (no
``<style>``, no class), tables for layout, no script, no image, no link to anything outside
the message. Every value is escaped with ``html.escape`` (collection names and error details
come from the site database). Each figure's cell carries ``data-metric`` (the history's
metric name, ``model.trends``) so scripts and tests can read the numbers back.

``--mail`` sends it as the body (with a plain-text part) and the PNG and PDF as attachments,
through ``[report.mail]`` (``smtplib``, STARTTLS by default); the password is never shown.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from pathlib import Path

from ..labels import (
    AUTHORITY_LABELS,
    FUNNEL_LABELS,
    REASON_LABELS,
    WORKLOAD_LABELS,
    enrollment_status_labels,
)
from ..model.kpis import BY_METRIC
from ..model.trends import OS_METRIC
from ..settings import MailSettings
from ..text import change_text, one_line, pct
from . import ReportError
from .figures import TOP_RULES, day_text, time_text

SMTP_TIMEOUT_SECONDS = 60

FONT = "'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif"
INK = "#212529"
MUTED = "#5c636a"
LINE = "#dee2e6"
GOOD = "#00704f"
BAD = "#b34700"
SEVERITY_COLORS = {
    "high": ("#D55E00", "#ffffff"),
    "medium": ("#E69F00", INK),
    "low": ("#56B4E9", INK),
}
CHANGE_GOOD = {"newly_comanaged": True, "newly_failed": False, "fell_back": False}

TH = (
    f"text-align:left;padding:4px 8px;border-bottom:2px solid {LINE};color:{MUTED};"
    "font-weight:600;font-size:12px;"
)
TD = f"padding:4px 8px;border-bottom:1px solid {LINE};font-size:13px;vertical-align:top;"
NUM = TD + "text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums;"


def e(value: object) -> str:
    return escape(str(value), quote=True)


def _heading(text: str) -> str:
    return (
        f'<h2 style="font-family:{FONT};font-size:16px;margin:22px 0 6px;color:{INK};">'
        f"{e(text)}</h2>"
    )


def _note(text: str) -> str:
    return (
        f'<p style="font-family:{FONT};font-size:12px;color:{MUTED};margin:2px 0 6px;">'
        f"{e(text)}</p>"
    )


def _table(head: list[tuple[str, bool]], rows: list[str]) -> str:
    """``head``: (title, right-aligned); ``rows``: ready ``<tr>`` strings."""
    cells = "".join(
        f'<th style="{TH}{"text-align:right;" if right else ""}">{e(title)}</th>'
        for title, right in head
    )
    return (
        f'<table role="presentation" cellpadding="0" cellspacing="0" '
        f'style="border-collapse:collapse;width:100%;font-family:{FONT};color:{INK};">'
        f"<thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _count_rows(items: list[tuple[str, str, int]], whole: int) -> list[str]:
    """(metric, label, count) rows with the count's share of ``whole``."""
    return [
        f'<tr><td style="{TD}">{e(label)}</td>'
        f'<td style="{NUM}" data-metric="{e(metric)}">{count:,}</td>'
        f'<td style="{NUM}color:{MUTED};">{e(pct(count, whole))}</td></tr>'
        for metric, label, count in items
    ]


def _os_parts(summary: dict) -> list[str]:
    """The OS groups and releases: client devices only, as the console's tile counts them,
    with the records left out; a past day recorded before that rule has no OS figures."""
    groups = summary.get("os_groups")
    if groups is None:
        return [
            _note(
                "Not available for this day: its snapshot was recorded before the OS "
                "figures counted client devices only."
            )
        ]
    clients = sum(groups.values())
    without = int(summary.get("without_client") or 0)
    parts = [
        _table(
            [("OS group", False), ("Client devices", True), ("% of client devices", True)],
            _count_rows([(f"{OS_METRIC}/{k}", k, v) for k, v in groups.items()], clients),
        ),
        f'<p style="font-family:{FONT};font-size:12px;color:{MUTED};margin:2px 0 6px;">'
        f'<span data-metric="without_client">{without:,}</span> '
        f"{'record' if without == 1 else 'records'} without the ConfigMgr client "
        f"{'is' if without == 1 else 'are'} not counted here.</p>",
    ]
    if summary.get("os_releases"):
        parts += [
            _heading("OS releases"),
            _table(
                [("Release", False), ("Client devices", True), ("% of client devices", True)],
                _count_rows(
                    [(f"os_releases/{k}", k, v) for k, v in summary["os_releases"].items()], clients
                ),
            ),
        ]
    return parts


def _delta(row: dict) -> str:
    if row.get("delta") is None:
        return f'<span style="color:{MUTED};">no week-ago snapshot</span>'
    delta = row["delta"]
    since = day_text(date.fromisoformat(row["since"]))
    if delta == 0:
        return f'<span style="color:{MUTED};">= no change since {e(since)}</span>'
    good = BY_METRIC[row["metric"]].good
    up = delta > 0
    color = MUTED if good is None else (GOOD if (good == "up") == up else BAD)
    arrow = "&#9650;" if up else "&#9660;"
    return (
        f'<span style="color:{color};font-weight:600;" data-delta="{delta}">{arrow} '
        f'{e(f"{delta:+,}")}</span> <span style="color:{MUTED};">since {e(since)}</span>'
    )


def _kpis(figures: dict) -> str:
    rows = []
    for row in figures["kpis"]:
        metric = row["metric"]
        attribute = (
            f'data-metric="{e(metric)}"'
            if metric in ("devices", "comanaged", "attention_devices")
            else f'data-kpi="{e(metric)}"'
        )
        rows.append(
            f'<tr><td style="{TD}font-weight:600;">{e(row["title"])}</td>'
            f'<td style="{NUM}font-size:16px;font-weight:700;" {attribute}>'
            f"{row['value']:,}</td>"
            f'<td style="{TD}color:{MUTED};">{e(row["note"])}</td>'
            f'<td style="{TD}">{_delta(row)}</td></tr>'
        )
    return _table([("", False), ("", True), ("", False), ("Week over week", False)], rows)


def _changes(figures: dict) -> str:
    changes = figures["changes"]
    if changes is None:
        return _note(
            "No per-device snapshot a week or more before this one: changes appear "
            "once history covers a week."
        )
    rows = []
    for item in changes["items"]:
        color = GOOD if CHANGE_GOOD[item["kind"]] else BAD
        rows.append(
            f'<tr><td style="{TD}">{e(item["label"])}</td>'
            f'<td style="{NUM}font-weight:700;color:{color};" '
            f'data-change="{e(item["kind"])}">{item["count"]:,}</td></tr>'
        )
    since = day_text(date.fromisoformat(changes["since"]))
    return _note(f"Devices compared with the snapshot of {since}") + _table(
        [("Change", False), ("Devices", True)], rows
    )


def _workloads(summary: dict) -> str:
    comanaged = summary["comanaged"]
    authorities = list(AUTHORITY_LABELS)
    rows = []
    for key, counts in summary["workloads"].items():
        cells = "".join(
            f'<td style="{NUM}" data-metric="{e(f"workloads/{key}/{authority}")}">'
            f'{counts[authority]:,} <span style="color:{MUTED};">'
            f"({e(pct(counts[authority], comanaged))})</span></td>"
            for authority in authorities
        )
        rows.append(f'<tr><td style="{TD}">{e(WORKLOAD_LABELS[key])}</td>{cells}</tr>')
    return _table([("Workload", False)] + [(AUTHORITY_LABELS[a], True) for a in authorities], rows)


def _attention(figures: dict) -> str:
    rows = figures["attention"][:TOP_RULES]
    if not rows:
        return _note("No device needs attention.")
    devices = figures["summary"]["devices"]
    out = []
    for row in rows:
        background, color = SEVERITY_COLORS[row["severity"]]
        badge = (
            f'<span style="background:{background};color:{color};padding:1px 6px;'
            f'border-radius:4px;font-size:11px;font-weight:600;">'
            f"{e(row['severity'].capitalize())}</span>"
        )
        out.append(
            f'<tr><td style="{TD}">{badge}</td>'
            f'<td style="{TD}font-weight:600;">{e(row["title"])}</td>'
            f'<td style="{NUM}" data-metric="{e("attention/" + row["id"])}">'
            f"{row['count']:,}</td>"
            f'<td style="{NUM}color:{MUTED};">{e(pct(row["count"], devices))}</td>'
            f'<td style="{TD}font-size:12px;">{e(row["fix"])}</td></tr>'
        )
    return _table(
        [
            ("Severity", False),
            ("Rule", False),
            ("Devices", True),
            ("% of devices", True),
            ("Fix", False),
        ],
        out,
    )


def _errors(figures: dict) -> str:
    if figures.get("errors_unavailable"):
        return _note("Enrollment errors by code are kept in history for whole sites only.")
    rows = figures["errors"]
    if not rows:
        return _note("No enrollment errors.")
    total = figures["errors_total"]
    out = [
        f'<tr><td style="{TD}font-family:Consolas,monospace;">{e(row["code"])}</td>'
        f'<td style="{NUM}" data-metric="{e("errors/" + row["code"])}">{row["count"]:,}</td>'
        f'<td style="{NUM}color:{MUTED};">{e(pct(row["count"], total))}</td>'
        f'<td style="{TD}">{e(row["description"])}</td>'
        f'<td style="{TD}font-size:12px;">{e(row["fix"])}</td></tr>'
        for row in rows
    ]
    return _table(
        [
            ("Code", False),
            ("Devices", True),
            ("% of failures", True),
            ("Description", False),
            ("Fix", False),
        ],
        out,
    )


def _intune(figures: dict) -> list[str]:
    """The ConfigMgr-and-Intune tables (nothing without an Intune source)."""
    intune = figures.get("intune")
    if not intune:
        return []

    def rows(items: list[dict]) -> list[str]:
        return [
            f'<tr><td style="{TD}">{e(row["label"])}</td>'
            f'<td style="{NUM}" data-metric="{e(row["metric"])}">{row["count"]:,}</td>'
            f'<td style="{NUM}color:{MUTED};">{e(change_text(row["delta"]))}</td></tr>'
            for row in items
        ]

    head = [("Devices", True), ("Change in a week", True)]
    return [
        _heading("ConfigMgr and Intune"),
        _table(
            [("ConfigMgr record against Intune's", False), *head],
            rows([*intune["reconciliation"], intune["authority_mismatch"]]),
        ),
        _heading("Intune compliance of co-managed devices"),
        _table([("Compliance", False), *head], rows(intune["compliance"])),
    ]


def summary_html(figures: dict) -> str:
    """The e-mail body for a report's figures (a whole HTML document)."""
    summary = figures["summary"]
    devices, comanaged = summary["devices"], summary["comanaged"]
    title = f"{figures['title']} {figures['week']}"
    labels = enrollment_status_labels(figures.get("status_labels", "entra"))
    status = summary["enrollment_status"]
    funnel = summary["funnel"]
    reasons = summary["not_comanaged_reasons"]
    header = [
        f'<div style="font-family:{FONT};font-size:13px;color:{MUTED};font-weight:600;">'
        f"{e(figures['organisation'])}</div>"
        if figures["organisation"]
        else "",
        f'<h1 style="font-family:{FONT};font-size:22px;margin:2px 0 2px;color:{INK};">'
        f'{e(figures["title"])} <span style="color:#0072B2;">{e(figures["week"])}</span></h1>',
        _note(f"{figures['week_text']} · {figures['scope']['text']}"),
        _note(
            f"Data as of {time_text(figures['data_as_of'])} · report date "
            f"{time_text(figures['generated_at'])}"
        ),
    ]
    parts = [
        *header,
        _heading("This week"),
        _kpis(figures),
        _heading("What changed this week"),
        _changes(figures),
        _heading("Co-management status"),
        _table(
            [("Stage", False), ("Devices", True), ("% of eligible", True)],
            _count_rows(
                [(f"funnel/{k}", FUNNEL_LABELS[k], v) for k, v in funnel.items()],
                funnel["eligible"],
            ),
        ),
        _heading("Co-management enrollment status"),
        _table(
            [("Status", False), ("Devices", True), ("% of targeted", True)],
            _count_rows(
                [(f"enrollment_status/{k}", labels[k], v) for k, v in status.items()],
                sum(status.values()),
            ),
        ),
        _heading("Workload transition (co-managed devices)"),
        _workloads(summary),
        *_intune(figures),
        _heading("Top attention rules"),
        _attention(figures),
        _heading("Enrollment errors"),
        _errors(figures),
        _heading("Why devices are not co-managed"),
        _table(
            [("Reason", False), ("Devices", True), ("% of not co-managed", True)],
            _count_rows(
                [(f"reasons/{k}", REASON_LABELS[k], v) for k, v in reasons.items()],
                devices - comanaged,
            ),
        ),
        _heading("Client OS distribution"),
    ]
    parts += _os_parts(summary)
    sources = summary.get("sources") or []
    if sources:
        parts += [
            _heading("Sources"),
            _table(
                [("Site", False), ("Kind", False), ("Rows", True), ("Dropped", True)],
                [
                    f'<tr><td style="{TD}">{e(s["site"])}</td><td style="{TD}">'
                    f'{e(str(s["kind"]).upper())}</td><td style="{NUM}">{int(s["rows"]):,}</td>'
                    f'<td style="{NUM}">{int(s["dropped"]):,}</td></tr>'
                    for s in sources
                ],
            ),
        ]
    parts += [_note(note) for note in figures["notes"]]
    parts.append(_note("The full report (charts and trends) is attached as PNG and PDF."))
    body = "\n".join(part for part in parts if part)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title></head>\n"
        f'<body style="margin:0;padding:0;background:#f4f6f8;">\n'
        f'<div style="max-width:760px;margin:0 auto;padding:20px 24px;background:#ffffff;'
        f'font-family:{FONT};color:{INK};">\n{body}\n</div>\n</body></html>\n'
    )


# -- sending --------------------------------------------------------------------------------------


def subject(figures: dict) -> str:
    parts = [f"{figures['title']} {figures['week']}"]
    if figures.get("organisation"):
        parts.append(figures["organisation"])
    scope = figures.get("scope") or {}
    if scope.get("site") or scope.get("collection"):
        parts.append(scope["text"])
    return " ".join(" – ".join(parts).split())  # one line: no header injection


def mail_message(
    mail: MailSettings, figures: dict, html_body: str, text_body: str, attachments: dict[str, Path]
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject(figures)
    message["From"] = mail.sender
    message["To"] = ", ".join(mail.to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=mail.sender.rpartition("@")[2] or None)
    message.set_content(text_body)
    message.add_alternative(html_body, subtype="html")
    kinds = {"png": ("image", "png"), "pdf": ("application", "pdf")}
    for fmt, path in attachments.items():
        maintype, subtype = kinds[fmt]
        message.add_attachment(
            path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
        )
    return message


def send_mail(
    mail: MailSettings, message: EmailMessage, environ: Mapping[str, str] | None = None
) -> None:
    """Send through ``[report.mail]``; the password (from ``password_env``) is never shown."""
    environ = os.environ if environ is None else environ
    password = None
    if mail.user:
        password = environ.get(mail.password_env)
        if not password:
            raise ReportError(
                f"report.mail.password_env names {mail.password_env}, which is "
                "not set: put the mail password in that environment variable"
            )
    where = f"{mail.host}:{mail.port}"
    try:
        with smtplib.SMTP(mail.host, mail.port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            smtp.ehlo()
            if mail.starttls:
                if not smtp.has_extn("starttls"):
                    raise ReportError(
                        f"the mail server {where} does not offer STARTTLS (set "
                        "starttls = false only for a trusted internal relay)",
                        exit_code=1,
                    )
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if password is not None:  # read (and checked) above exactly when mail.user is set
                smtp.login(mail.user, password)
            refused = smtp.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise ReportError(
            f"the mail server {where} refused the sign-in of {mail.user!r}", exit_code=1
        ) from None
    except smtplib.SMTPRecipientsRefused as error:
        raise ReportError(
            f"the mail server {where} refused every recipient: {', '.join(error.recipients)}",
            exit_code=1,
        ) from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
        text = one_line(error)
        if password:
            text = text.replace(password, "***")
        raise ReportError(f"cannot send the report through {where}: {text}", exit_code=1) from None
    if refused:
        raise ReportError(f"the mail server {where} refused: {', '.join(refused)}", exit_code=1)

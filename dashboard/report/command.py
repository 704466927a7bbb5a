"""``comanage-dashboard report``: the weekly report as PNG, PDF and an HTML e-mail summary.

    comanage-dashboard report [--config FILE] [--out DIR] [--week 2026-W48]
                              [--format png,pdf,html] [--site S] [--collection ID]
                              [--url URL [--user NAME] [--header "Name: value"]] [--mail]

How it works:

1. Without ``--url`` the data is loaded here (like ``summary``: the sources, the history store
   read-only), and the app is started in-process on a free loopback port
   (``capture.serving``). That app never asks for a sign-in, whatever ``auth`` says,
   because it is not the served dashboard: it lives for the report's few seconds and answers
   only requests carrying a random per-run token that the report's browser sends (any other
   local client gets 403).
   With ``--url`` the report page of a running dashboard is used instead and nothing is
   loaded here. For a dashboard with ``auth = "users"``, ``--user NAME`` signs in through
   ``/login`` with the password from ``$COMANAGE_REPORT_PASSWORD``; ``--header "Name: value"``
   (repeatable) adds a request header, e.g. for ``auth = "proxy"`` when the report runs on a
   ``trusted_proxies`` address (``--header "X-Remote-User: report"``) or a proxy token.
2. A headless Chromium, Chrome or Microsoft Edge (``capture.chromium_path``: the
   ``browser`` setting, ``$COMANAGE_BROWSER``, the usual install places) opens
   ``/report?week=..&site=..&collection=..`` at 1200 px, waits until every chart is drawn
   and the fonts are loaded, then writes ``co-management-<week>.png`` (full page) and
   ``co-management-<week>.pdf`` (print CSS, ``[report] paper`` A4 or Letter, backgrounds
   printed, scaled to the paper's width).
3. ``co-management-<week>.html`` is the e-mail summary (``mail``), written from the
   figures embedded in the page (so from exactly the numbers drawn), or computed directly when
   only ``--format html`` is asked without ``--url`` (no browser needed then).
4. ``--mail`` sends the summary as the body (with a plain-text part) and the PNG and PDF as
   attachments, through ``[report.mail]`` (``smtplib``, STARTTLS by default).

A scoped report's names add its site and collection
(``co-management-2026-W48-PS1-CAS00101.png``), so it never overwrites the whole estate's.
Files go to ``--out``, else ``[report] out``, else ``reports`` beside the config file; their
names are built from the ISO week (``files``).
Exit codes: 0 done; 2 something to fix (unknown week, no browser, bad settings); 1 anything
else (the browser failed, the mail server refused), always with a one-line reason.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import dash
from flask import Response, request

from ..checked_load import UsageError, load_checked
from ..data.contract import ContractError
from ..data.estate import LoadError
from ..data.history import HistoryError, open_history
from ..service.store import EstateStore
from ..settings import Settings, SettingsError
from ..text import one_line
from ..web.app import create_app
from . import ReportError
from .capture import PASSWORD_ENV, TOKEN_HEADER, capture, chromium_path, serving
from .figures import parse_week, plain_text, week_of, weekly_figures
from .files import file_name, output_folder, write_report_file
from .mail import mail_message, send_mail, summary_html

FORMATS = ("png", "pdf", "html")


@dataclass
class Outcome:
    files: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] | None = None


# -- arguments ---------------------------------------------------------------------------------


def parse_formats(text: str | None) -> tuple[str, ...]:
    """``png,pdf`` -> ("png", "pdf"), in the canonical order; ReportError for others."""
    if text is None or not str(text).strip():
        return FORMATS
    asked = [part.strip().lower() for part in str(text).split(",") if part.strip()]
    unknown = [part for part in asked if part not in FORMATS]
    if unknown or not asked:
        raise ReportError(
            f"--format takes a comma-separated subset of {','.join(FORMATS)}, "
            f"got {str(text)[:40]!r}"
        )
    return tuple(fmt for fmt in FORMATS if fmt in asked)


def parse_headers(values: list[str] | None) -> dict[str, str]:
    headers = {}
    for value in values or []:
        name, sep, content = str(value).partition(":")
        name = name.strip()
        if (
            not sep
            or not name
            or any(c in name for c in " \t\r\n")
            or any(c in content for c in "\r\n")
        ):
            raise ReportError('--header takes "Name: value" (one header per --header)')
        headers[name] = content.strip()
    return headers


def check_url(url: str) -> str:
    parts = urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ReportError(
            f"--url must be the dashboard's address (http://host:port), got {str(url)[:80]!r}"
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def report_path(week: str | None, site: str | None, collection: str | None) -> str:
    params = [
        (key, value)
        for key, value in (("week", week), ("site", site), ("collection", collection))
        if value
    ]
    return "/report" + (f"?{urlencode(params, quote_via=quote)}" if params else "")


# -- the in-process app ------------------------------------------------------------------------


def private_app(settings: Settings, store: EstateStore, token: str) -> dash.Dash:
    """The dashboard app for this run only: no sign-in, but every request must carry the
    run's token (the report's browser sends it; any other local client gets 403)."""
    app = create_app(settings.with_values(auth="none"), store)

    @app.server.before_request
    def _only_this_report() -> Response | None:
        if not hmac.compare_digest(request.headers.get(TOKEN_HEADER, ""), token):
            return Response(
                "This server only serves one report run.\n", status=403, mimetype="text/plain"
            )
        return None

    return app


def _load_store(settings: Settings, args: argparse.Namespace) -> EstateStore:
    history = open_history(settings, read_only=True)
    estate = load_checked(settings, args, history)
    store = EstateStore(settings, loader=lambda _settings: estate, history=history)
    if not store.refresh():
        raise ReportError(f"cannot prepare the data: {store.status().error}", exit_code=1)
    return store


# -- the command -------------------------------------------------------------------------------


def make_report(
    settings: Settings,
    args: argparse.Namespace,
    progress: Callable[[str], None] = lambda message: None,
) -> Outcome:
    """Write the asked files (and send the mail); raises ReportError."""
    outcome = Outcome()
    timings = outcome.timings
    formats = parse_formats(args.format)
    week = week_of(parse_week(args.week)[0]) if args.week else None
    headers = parse_headers(getattr(args, "header", None))
    user = getattr(args, "user", None)
    url = check_url(args.url) if args.url else None
    if (headers or user) and not url:
        raise ReportError("--user and --header are for --url (a running dashboard)")
    password = None
    if user:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise ReportError(
                f"--user needs the password in the environment variable {PASSWORD_ENV}"
            )
    mail = settings.report.mail if args.mail else None
    if args.mail and mail is None:
        raise ReportError("--mail needs a [report.mail] table in the config file (host, from, to)")
    paper = getattr(args, "paper", None) or settings.report.paper
    folder = output_folder(settings, args.out)
    needs_browser = bool(url) or "png" in formats or "pdf" in formats
    executable = chromium_path(settings.browser) if needs_browser else None

    started = time.perf_counter()
    store: EstateStore | None = None
    if not url:
        store = _load_store(settings, args)
        timings["load"] = time.perf_counter() - started
    path = report_path(week, getattr(args, "site", None), getattr(args, "collection", None))

    png = pdf = None
    if executable is not None:  # found exactly when a browser is needed
        if store is not None:
            step = time.perf_counter()
            # Fail before starting a browser when the week has no data.
            weekly_figures(store, settings, week, args.site, args.collection)
            timings["figures"] = time.perf_counter() - step
            token = secrets.token_urlsafe(32)
            step = time.perf_counter()
            app = private_app(settings, store, token)
            timings["app"] = time.perf_counter() - step
            # waitress warns about its queue depth on stderr: not news for a report
            logging.getLogger("waitress.queue").setLevel(logging.ERROR)
            with serving(app, threads=8) as base:
                progress(f"rendering {path} in {Path(executable).name} ...")
                figures, png, pdf = capture(
                    base,
                    path,
                    formats,
                    executable,
                    paper,
                    headers={TOKEN_HEADER: token},
                    timings=timings,
                )
        else:
            assert url is not None  # nothing was loaded here: the report comes from --url
            progress(f"rendering {url}{path} in {Path(executable).name} ...")
            # Integrated Windows authentication (a proxy such as IIS asking for Negotiate or
            # NTLM) is allowed for the dashboard's host only.
            host = urlsplit(url).hostname or ""
            figures, png, pdf = capture(
                url,
                path,
                formats,
                executable,
                paper,
                headers=headers,
                user=user,
                password=password,
                timings=timings,
                extra_args=(f"--auth-server-allowlist={host}",),
            )
    else:
        # Without a browser there is no --url either: the data was loaded here.
        assert store is not None
        step = time.perf_counter()
        figures = weekly_figures(store, settings, week, args.site, args.collection)
        timings["figures"] = time.perf_counter() - step
    outcome.figures = figures
    week = figures["week"]

    step = time.perf_counter()
    html_body = summary_html(figures) if ("html" in formats or args.mail) else None
    contents = {
        "png": png,
        "pdf": pdf,
        "html": html_body.encode("utf-8") if html_body is not None else None,
    }
    scope = figures.get("scope") or {}
    for fmt in formats:
        content = contents[fmt]
        # capture draws every asked image format; the HTML is made above when asked
        assert content is not None
        name = file_name(week, fmt, scope.get("site"), scope.get("collection"))
        outcome.files[fmt] = write_report_file(folder, name, content)
    timings["write"] = time.perf_counter() - step

    if mail is not None:
        step = time.perf_counter()
        assert html_body is not None  # made above for --mail
        attachments: dict[str, Path] = {
            fmt: outcome.files[fmt] for fmt in ("png", "pdf") if fmt in outcome.files
        }
        message = mail_message(mail, figures, html_body, plain_text(figures), attachments)
        progress(f"sending to {', '.join(mail.to)} through {mail.host}:{mail.port} ...")
        send_mail(mail, message)
        timings["mail"] = time.perf_counter() - step
    timings["total"] = time.perf_counter() - started
    return outcome


def run(settings: Settings, args: argparse.Namespace) -> int:
    """The command: files printed on stdout, progress and timings on stderr."""
    quiet = getattr(args, "quiet", False)

    def progress(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    try:
        outcome = make_report(settings, args, progress)
    except ReportError as error:
        if error.exit_code == 2:
            raise UsageError(str(error)) from None
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except (SettingsError, LoadError, ContractError, UsageError, HistoryError):
        raise  # the command's usual exit 2
    except Exception as error:
        print(f"error: report failed: {type(error).__name__}: {one_line(error)}", file=sys.stderr)
        return 1
    for path in outcome.files.values():
        print(path)
    mail = settings.report.mail
    if args.mail and mail is not None:  # make_report refuses --mail without [report.mail]
        progress(f"mailed to {', '.join(mail.to)}")
    progress(
        "timings: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in outcome.timings.items())
    )
    return 0

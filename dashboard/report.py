"""``comanage-dashboard report``: the weekly report as PNG, PDF and an HTML e-mail summary.

    comanage-dashboard report [--config FILE] [--out DIR] [--week 2026-W48]
                              [--format png,pdf,html] [--site S] [--collection ID]
                              [--url URL [--user NAME] [--header "Name: value"]] [--mail]

How it works:

1. Without ``--url`` the data is loaded here (like ``summary``: the sources, the history store
   read-only), and the app is started in-process on a free loopback port
   (``web.browser.serving``). That app never asks for a sign-in, whatever ``auth`` says,
   because it is not the served dashboard: it lives for the report's few seconds and answers
   only requests carrying a random per-run token that the report's browser sends (any other
   local client gets 403).
   With ``--url`` the report page of a running dashboard is used instead and nothing is
   loaded here. For a dashboard with ``auth = "users"``, ``--user NAME`` signs in through
   ``/login`` with the password from ``$COMANAGE_REPORT_PASSWORD``; ``--header "Name: value"``
   (repeatable) adds a request header, e.g. for ``auth = "proxy"`` when the report runs on a
   ``trusted_proxies`` address (``--header "X-Remote-User: report"``) or a proxy token.
2. A headless Chromium, Chrome or Microsoft Edge (``web.browser.chromium_path``: the
   ``browser`` setting, ``$COMANAGE_BROWSER``, the usual install places) opens
   ``/report?week=..&site=..&collection=..`` at 1200 px, waits until every chart is drawn
   and the fonts are loaded, then writes ``co-management-<week>.png`` (full page) and
   ``co-management-<week>.pdf`` (print CSS, ``[report] paper`` A4 or Letter, backgrounds
   printed, scaled to the paper's width).
3. ``co-management-<week>.html`` is the e-mail summary (``report_summary``), written from the
   figures embedded in the page (so from exactly the numbers drawn), or computed directly when
   only ``--format html`` is asked without ``--url`` (no browser needed then).
4. ``--mail`` sends the summary as the body (with a plain-text part) and the PNG and PDF as
   attachments, through ``[report.mail]`` (``smtplib``, STARTTLS by default).

A scoped report's names add its site and collection
(``co-management-2026-W48-PS1-CAS00101.png``), so it never overwrites the whole estate's.
Files go to ``--out``, else ``[report] out``, else ``reports`` beside the config file; their
names are built from the ISO week through ``web.security.safe_output_path``.
Exit codes: 0 done; 2 something to fix (unknown week, no browser, bad settings); 1 anything
else (the browser failed, the mail server refused), always with a one-line reason.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import secrets
import smtplib
import ssl
import sys
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from .private import private_folder, write_private
from .settings import MailSettings, Settings
from .web.weekly import ReportError

FORMATS = ("png", "pdf", "html")
PASSWORD_ENV = "COMANAGE_REPORT_PASSWORD"
TOKEN_HEADER = "X-Comanage-Report-Token"
PAGE_WIDTH = 1200  # the report page's width (pages/report.WIDTH)
PAPERS_MM = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}
MARGIN_MM = 10.0
RENDER_TIMEOUT_MS = 90_000
SMTP_TIMEOUT_SECONDS = 60
MM_TO_CSS_PX = 96 / 25.4


class ReportFailed(Exception):
    """Something went wrong making or sending the report (exit 1, one line)."""


@dataclass
class Outcome:
    files: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    figures: dict | None = None


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


def output_folder(settings: Settings, out: str | None) -> Path:
    """``--out``, else ``[report] out``, else ``reports`` beside the config file."""
    if out:
        return Path(out).expanduser().resolve()
    if settings.report.out is not None:
        return settings.report.out
    return (settings.work_folder / "reports").resolve()


def file_name(
    week: str, extension: str, site: str | None = None, collection: str | None = None
) -> str:
    """``co-management-2026-W48[-PS1][-CAS00101].png``: a scoped report and the whole
    estate's report of the same week never share a name."""
    from .web.security import safe_filename

    stem = "-".join(part for part in ("co-management", week, site, collection) if part)
    return safe_filename(stem, default="co-management-report") + f".{extension}"


def report_path(week: str | None, site: str | None, collection: str | None) -> str:
    params = [
        (key, value)
        for key, value in (("week", week), ("site", site), ("collection", collection))
        if value
    ]
    return "/report" + (f"?{urlencode(params, quote_via=quote)}" if params else "")


# -- the browser part --------------------------------------------------------------------------


def pdf_options(paper: str, footer: str = "") -> dict:
    """page.pdf options: the paper, its margins, the scale that fits the page's width, and a
    footer line (``footer``, then "page N of M")."""
    width_mm, _height = PAPERS_MM[paper]
    printable = (width_mm - 2 * MARGIN_MM) * MM_TO_CSS_PX
    margin = f"{MARGIN_MM:g}mm"
    footer_html = (
        f'<div style="font-family:sans-serif;font-size:7px;color:#5c636a;width:100%;'
        f'margin:0 {margin};display:flex;justify-content:space-between;">'
        f'<span>{escape(footer)}</span><span>page <span class="pageNumber"></span> of '
        f'<span class="totalPages"></span></span></div>'
    )
    return {
        "format": paper,
        "print_background": True,
        "margin": {
            "top": margin,
            "bottom": f"{MARGIN_MM + 4:g}mm",
            "left": margin,
            "right": margin,
        },
        "scale": round(min(1.0, printable / PAGE_WIDTH), 4),
        "prefer_css_page_size": False,
        "display_header_footer": True,
        "header_template": "<span></span>",
        "footer_template": footer_html,
    }


def _sign_in(page, base: str, user: str, password: str, path: str) -> None:
    page.goto(f"{base}/login?next={quote(path, safe='')}")
    if not page.query_selector("#login-form"):
        return  # no sign-in page: the dashboard does not use accounts
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_load_state("load")
    if urlsplit(page.url).path.endswith("/login"):
        raise ReportError(f"the dashboard at {base} refused the sign-in of {user!r}")


def _check_response(response, page, base: str) -> None:
    status = response.status if response is not None else 0
    if urlsplit(page.url).path.endswith("/login"):
        raise ReportError(
            f"the dashboard at {base} asks for a sign-in: give --user NAME and "
            f"the password in ${PASSWORD_ENV}"
        )
    if status == 401:
        raise ReportError(
            f"the dashboard at {base} refused the report (HTTP 401): it needs "
            f"a sign-in (--user NAME with ${PASSWORD_ENV}) or a header "
            "(--header)"
        )
    if status == 403:
        raise ReportError(
            f"the dashboard at {base} refused the report (HTTP 403): with auth "
            '= "proxy", run the report from a trusted_proxies address with '
            '--header "<proxy_user_header>: <name>", or go through the proxy'
        )
    if status >= 400:
        raise ReportFailed(f"the dashboard at {base} answered HTTP {status}")


def capture(
    base: str,
    path: str,
    formats: tuple[str, ...],
    executable: str,
    paper: str,
    headers: dict[str, str] | None = None,
    user: str | None = None,
    password: str | None = None,
    timings: dict | None = None,
    extra_args: tuple[str, ...] = (),
) -> tuple[dict, bytes | None, bytes | None]:
    """(figures, png, pdf) of the report page at ``base + path``."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from .web.browser import chromium, wait_for_dash

    timings = {} if timings is None else timings
    started = time.perf_counter()
    png = pdf = None
    try:
        with (
            sync_playwright() as playwright,
            chromium(playwright, executable, extra_args) as browser,
        ):
            timings["browser start"] = time.perf_counter() - started
            context = browser.new_context(
                viewport={"width": PAGE_WIDTH, "height": 1000},
                device_scale_factor=1,
                extra_http_headers=headers or {},
                locale="en-GB",
                timezone_id="UTC",
            )
            page = context.new_page()
            page.set_default_timeout(RENDER_TIMEOUT_MS)
            step = time.perf_counter()
            if user:
                _sign_in(page, base, user, password or "", path)
            response = page.goto(base + path, wait_until="load")
            _check_response(response, page, base)
            page.wait_for_selector("#report", state="attached")
            error = page.get_attribute("#report", "data-error")
            if error:
                raise ReportError(error)
            graphs = int(page.get_attribute("#report", "data-graphs") or 0)
            wait_for_dash(page, graphs=graphs, timeout=RENDER_TIMEOUT_MS)
            page.wait_for_function(
                "(n) => { const plots = document.querySelectorAll('#report .js-plotly-plot');"
                " return plots.length >= n && Array.from(plots).every("
                "p => p.querySelector('.main-svg') && p._fullLayout); }",
                arg=graphs,
                timeout=RENDER_TIMEOUT_MS,
            )
            page.evaluate("() => document.fonts.ready.then(() => true)")
            figures = json.loads(page.text_content("#report-data") or "{}")
            timings["page render"] = time.perf_counter() - step
            if "png" in formats:
                step = time.perf_counter()
                png = page.screenshot(full_page=True, type="png", animations="disabled")
                timings["png"] = time.perf_counter() - step
            if "pdf" in formats:
                step = time.perf_counter()
                footer = " · ".join(
                    part
                    for part in (
                        f"{figures.get('title', 'Co-management')} {figures.get('week', '')}",
                        figures.get("organisation"),
                        (figures.get("scope") or {}).get("text"),
                    )
                    if part
                )
                pdf = page.pdf(**pdf_options(paper, footer))
                timings["pdf"] = time.perf_counter() - step
            context.close()
    except PlaywrightError as error:
        raise ReportFailed(f"the browser failed: {_one_line(error)}") from None
    return figures, png, pdf


# -- the in-process app ------------------------------------------------------------------------


def private_app(settings: Settings, store, token: str):
    """The dashboard app for this run only: no sign-in, but every request must carry the
    run's token (the report's browser sends it; any other local client gets 403)."""
    from flask import Response, request

    from .web.app import create_app

    app = create_app(settings.with_values(auth="none"), store)

    @app.server.before_request
    def _only_this_report():
        if not hmac.compare_digest(request.headers.get(TOKEN_HEADER, ""), token):
            return Response(
                "This server only serves one report run.\n", status=403, mimetype="text/plain"
            )
        return None

    return app


def _load_store(settings: Settings, args: argparse.Namespace):
    from .checked_load import load_checked
    from .data.history import open_history
    from .service.store import EstateStore

    history = open_history(settings, read_only=True)
    estate = load_checked(settings, args, history)
    store = EstateStore(settings, loader=lambda _settings: estate, history=history)
    if not store.refresh():
        raise ReportFailed(f"cannot prepare the data: {store.status().error}")
    return store


# -- mail --------------------------------------------------------------------------------------


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


def send_mail(mail: MailSettings, message: EmailMessage, environ=None) -> None:
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
                    raise ReportFailed(
                        f"the mail server {where} does not offer STARTTLS (set "
                        "starttls = false only for a trusted internal relay)"
                    )
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if mail.user:
                smtp.login(mail.user, password)
            refused = smtp.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise ReportFailed(
            f"the mail server {where} refused the sign-in of {mail.user!r}"
        ) from None
    except smtplib.SMTPRecipientsRefused as error:
        raise ReportFailed(
            f"the mail server {where} refused every recipient: {', '.join(error.recipients)}"
        ) from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
        text = _one_line(error)
        if password:
            text = text.replace(password, "***")
        raise ReportFailed(f"cannot send the report through {where}: {text}") from None
    if refused:
        raise ReportFailed(f"the mail server {where} refused: {', '.join(refused)}")


# -- the command -------------------------------------------------------------------------------


def make_report(
    settings: Settings, args: argparse.Namespace, progress=lambda message: None
) -> Outcome:
    """Write the asked files (and send the mail); raises ReportError / ReportFailed /
    BrowserMissing."""
    from .report_summary import summary_html
    from .web.browser import chromium_path
    from .web.security import safe_output_path
    from .web.weekly import parse_week, plain_text, week_of, weekly_figures

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
    mail = settings.report.mail
    if args.mail and mail is None:
        raise ReportError("--mail needs a [report.mail] table in the config file (host, from, to)")
    paper = getattr(args, "paper", None) or settings.report.paper
    folder = output_folder(settings, args.out)
    needs_browser = bool(url) or "png" in formats or "pdf" in formats
    executable = chromium_path(settings.browser) if needs_browser else None

    started = time.perf_counter()
    store = None
    if not url:
        store = _load_store(settings, args)
        timings["load"] = time.perf_counter() - started
    path = report_path(week, getattr(args, "site", None), getattr(args, "collection", None))

    png = pdf = None
    if needs_browser:
        if store is not None:
            step = time.perf_counter()
            # Fail before starting a browser when the week has no data.
            weekly_figures(store, settings, week, args.site, args.collection)
            timings["figures"] = time.perf_counter() - step
            from .web.browser import serving

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
        step = time.perf_counter()
        figures = weekly_figures(store, settings, week, args.site, args.collection)
        timings["figures"] = time.perf_counter() - step
    outcome.figures = figures
    week = figures["week"]

    step = time.perf_counter()
    try:
        if not folder.exists():
            private_folder(folder)  # a folder we create is ours alone; one given is kept
    except OSError as error:
        raise ReportFailed(f"cannot create {folder}: {error.strerror or error}") from None
    html_body = summary_html(figures) if ("html" in formats or args.mail) else None
    contents = {
        "png": png,
        "pdf": pdf,
        "html": html_body.encode("utf-8") if html_body is not None else None,
    }
    for fmt in formats:
        scope = figures.get("scope") or {}
        target = safe_output_path(
            folder, file_name(week, fmt, scope.get("site"), scope.get("collection"))
        )
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            write_private(temporary, contents[fmt])  # device figures: owner only
            os.replace(temporary, target)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise ReportFailed(f"cannot write {target}: {error.strerror or error}") from None
        outcome.files[fmt] = target
    timings["write"] = time.perf_counter() - step

    if args.mail:
        step = time.perf_counter()
        attachments = {fmt: outcome.files[fmt] for fmt in ("png", "pdf") if fmt in outcome.files}
        message = mail_message(mail, figures, html_body, plain_text(figures), attachments)
        progress(f"sending to {', '.join(mail.to)} through {mail.host}:{mail.port} ...")
        send_mail(mail, message)
        timings["mail"] = time.perf_counter() - step
    timings["total"] = time.perf_counter() - started
    return outcome


def run(settings: Settings, args: argparse.Namespace) -> int:
    """The command: files printed on stdout, progress and timings on stderr."""
    from .web.browser import BrowserMissing

    quiet = getattr(args, "quiet", False)

    def progress(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    try:
        outcome = make_report(settings, args, progress)
    except (ReportError, BrowserMissing) as error:
        from .checked_load import UsageError

        raise UsageError(str(error)) from None
    except ReportFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        from .checked_load import UsageError
        from .data.contract import ContractError
        from .data.estate import LoadError
        from .data.history import HistoryError
        from .settings import SettingsError

        if isinstance(error, SettingsError | LoadError | ContractError | UsageError | HistoryError):
            raise  # the command's usual exit 2
        print(f"error: report failed: {type(error).__name__}: {_one_line(error)}", file=sys.stderr)
        return 1
    for path in outcome.files.values():
        print(path)
    if args.mail:
        progress(f"mailed to {', '.join(settings.report.mail.to)}")
    progress(
        "timings: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in outcome.timings.items())
    )
    return 0


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:300]

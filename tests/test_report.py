"""The weekly report: ``comanage-dashboard report`` on real data in a real headless Chromium.

Browser tests (``@pytest.mark.browser``) never skip: a missing Chromium fails them, saying
how to install one. The SMTP server is aiosmtpd on loopback, started by the test.
"""

from __future__ import annotations

import dataclasses
import json
import re
import smtplib
from datetime import date, timedelta
from email import message_from_bytes, policy
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest

from dashboard import cli
from dashboard.data.history import open_history, snapshot_day
from dashboard.model.trends import metrics_from_summary
from dashboard.report import ReportError
from dashboard.report import capture as browser_module
from dashboard.report.figures import parse_week, plain_text, week_of, weekly_figures
from dashboard.service.store import EstateStore
from dashboard.settings import SAMPLE_CONFIG, SettingsError, load_settings, settings_from_dict
from dashboard.web.pages import report as report_page
from tests.factories import loaded_store
from tests.helpers import by_id, free_port, run_cli, walk
from tests.web.estate_factory import HTML_DETAIL, write_estate

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-Pass-for-test"  # the SMTP and dashboard test password


def assert_one_line_error(done, code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


class Cells(HTMLParser):
    """``data-*`` attributes of an HTML summary's cells, with their text."""

    def __init__(self):
        super().__init__()
        self.metrics: dict[str, str] = {}
        self.changes: dict[str, str] = {}
        self.kpis: dict[str, str] = {}
        self.deltas: list[int] = []
        self.tags: set[str] = set()
        self._open: tuple[dict, str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        if "data-delta" in attrs:
            self.deltas.append(int(attrs["data-delta"]))
        for key, target in (
            ("data-metric", self.metrics),
            ("data-change", self.changes),
            ("data-kpi", self.kpis),
        ):
            if key in attrs:
                self._open = (target, attrs[key])
                target[attrs[key]] = ""

    def handle_data(self, data):
        if self._open is not None:
            target, key = self._open
            target[key] += data

    def handle_endtag(self, tag):
        if tag == "td":
            self._open = None


def number(text: str) -> int:
    return int(text.strip().split(" ")[0].replace(",", ""))


def cli_summary(config: Path, *extra: str) -> dict:
    done = run_cli("summary", "--config", str(config), "--format", "json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def sample_week() -> str:
    return week_of(snapshot_day(load_settings(SAMPLE_CONFIG).as_of))


# -- the report on the bundled sample ------------------------------------------------------


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    done = run_cli("report", "--config", str(SAMPLE_CONFIG), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    print(f"\nreport on the sample: {done.seconds:.1f} s; {done.stderr.strip().splitlines()[-1]}")
    return out, done


@pytest.mark.browser
def test_report_writes_the_three_files_named_by_week(sample_report):
    out, done = sample_report
    week = sample_week()
    names = sorted(path.name for path in out.iterdir())
    assert names == [f"co-management-{week}.{ext}" for ext in ("html", "pdf", "png")]
    assert done.stdout.split() == [
        str(out / f"co-management-{week}.{ext}") for ext in ("png", "pdf", "html")
    ]
    assert "timings:" in done.stderr


@pytest.mark.browser
def test_report_files_are_readable_by_their_owner_only(sample_report):
    out, _done = sample_report
    for path in out.iterdir():  # device figures: 0600 whatever the umask (pytest's is 022)
        assert path.stat().st_mode & 0o777 == 0o600, path


@pytest.mark.browser
def test_png_is_full_width_tall_and_not_blank(sample_report):
    from PIL import Image

    out, _done = sample_report
    image = Image.open(out / f"co-management-{sample_week()}.png")
    assert image.width == 1200
    # header, KPIs, changes, three overview charts, three trend charts and two tables
    assert image.height > 2800, image.height
    colours = image.convert("RGB").getcolors(maxcolors=1 << 22)
    assert len(colours) > 1000, len(colours)
    # the charts' own colours are drawn (Okabe-Ito green, blue and vermillion)
    present = {rgb for _count, rgb in colours}
    for rgb in ((0, 158, 115), (0, 114, 178), (213, 94, 0)):
        assert rgb in present, rgb


@pytest.mark.browser
def test_pdf_has_pages_with_the_title_and_week(sample_report):
    from pypdf import PdfReader

    out, _done = sample_report
    reader = PdfReader(out / f"co-management-{sample_week()}.pdf")
    assert len(reader.pages) >= 1
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Co-management" in text
    assert sample_week() in text
    assert "Top enrollment errors" in text
    width_pt = float(reader.pages[0].mediabox.width)
    assert abs(width_pt - 595.3) < 2  # A4 by default


@pytest.mark.browser
def test_html_summary_has_the_summary_figures_and_no_script(sample_report):
    out, _done = sample_report
    text = (out / f"co-management-{sample_week()}.html").read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=""", text, re.I)  # nothing fetched or linked
    assert "<style" not in text.lower() and "class=" not in text  # inline styles only
    cells = Cells()
    cells.feed(text)
    assert {"script", "img", "link", "iframe"}.isdisjoint(cells.tags)

    summary = cli_summary(SAMPLE_CONFIG)
    expected = metrics_from_summary(summary)
    expected.update({f"os_releases/{k}": v for k, v in summary["os_releases"].items()})
    shown = {key: number(value) for key, value in cells.metrics.items()}
    for key, value in expected.items():
        if key.startswith(("readiness/", "attention/")) or key == "intune.matched":
            # not in `summary`'s table; attention: the top rules only; the matched count is
            # the overview's
            continue
        assert shown.get(key) == value, key
    for key, value in shown.items():  # zeros are shown too, and every shown number is right
        assert value == expected.get(key, 0), key
    top = sorted(summary["attention"].values(), reverse=True)[:6]
    assert sorted((v for k, v in shown.items() if k.startswith("attention/")), reverse=True) == [
        v for v in top if v
    ]
    funnel = summary["funnel"]
    status = summary["enrollment_status"]
    assert number(cells.kpis["eligible_not_comanaged"]) == funnel["eligible"] - funnel["enrolled"]
    assert number(cells.kpis["failures"]) == status["failure_hybrid"] + status["failure_aad"]


@pytest.mark.browser
def test_html_summary_week_over_week_matches_history(sample_report):
    out, _done = sample_report
    text = (out / f"co-management-{sample_week()}.html").read_text(encoding="utf-8")
    cells = Cells()
    cells.feed(text)
    settings = load_settings(SAMPLE_CONFIG)
    history = open_history(settings, read_only=True)
    now = snapshot_day(settings.as_of)
    reference = history.reference_day(now, 7)
    then = history.aggregates(reference)
    summary = cli_summary(SAMPLE_CONFIG)
    assert cells.deltas[0] == summary["devices"] - then["devices"]
    assert cells.deltas[1] == summary["comanaged"] - then["comanaged"]
    assert set(cells.changes) == {"newly_comanaged", "newly_failed", "fell_back"}
    assert number(cells.changes["newly_comanaged"]) > 0


# -- weeks -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_store():
    settings = load_settings(SAMPLE_CONFIG)
    store = loaded_store(settings, history=open_history(settings, read_only=True))
    return settings, store


def test_parse_week():
    assert parse_week("2026-W48") == (date(2026, 11, 23), date(2026, 11, 29))
    assert parse_week("2026-W01") == (date(2025, 12, 29), date(2026, 1, 4))
    assert week_of(date(2026, 1, 1)) == "2026-W01"
    for bad in ("2026-48", "2026-W54", "W48", "", "2026-W48; rm -rf"):
        with pytest.raises(ReportError):
            parse_week(bad)


def test_current_week_shows_the_current_data(sample_store):
    settings, store = sample_store
    figures = weekly_figures(store, settings)
    assert figures["week"] == sample_week() and figures["source"] == "current"
    assert figures["summary"] == store.summary()
    assert figures["reference_day"] == store.week_ago().isoformat()
    assert weekly_figures(store, settings, sample_week())["summary"] == store.summary()


def test_earlier_week_shows_its_newest_snapshot(sample_store):
    settings, store = sample_store
    now = snapshot_day(settings.as_of)
    monday, _sunday = parse_week(week_of(now))
    earlier = week_of(monday - timedelta(days=7))
    figures = weekly_figures(store, settings, earlier)
    assert figures["source"] == "history" and figures["week"] == earlier
    day = date.fromisoformat(figures["day"])
    assert week_of(day) == earlier
    stored = store.history.aggregates(day)
    assert figures["summary"]["devices"] == stored["devices"]
    assert figures["summary"]["comanaged"] == stored["comanaged"]
    assert figures["reference_day"] == store.history.reference_day(day, 7).isoformat()
    assert figures["changes"]["since"] == figures["reference_day"]


def test_earlier_week_os_figures_are_client_devices_or_left_out(sample_store, tmp_path):
    """A stored week shows its client OS groups and the records left out; a week recorded
    before the OS figures counted client devices only shows none rather than wrong ones."""
    import shutil
    import sqlite3

    from dashboard.report.mail import summary_html

    settings, store = sample_store
    monday, _sunday = parse_week(week_of(snapshot_day(settings.as_of)))
    earlier = week_of(monday - timedelta(days=7))
    figures = weekly_figures(store, settings, earlier)
    summary = figures["summary"]
    assert sum(summary["os_groups"].values()) + summary["without_client"] == summary["devices"]
    text = summary_html(figures)
    assert f'data-metric="without_client">{summary["without_client"]:,}<' in text

    # The same history as an older version wrote it: OS groups over every record.
    copy = tmp_path / "sample"
    shutil.copytree(
        SAMPLE_CONFIG.parent, copy, ignore=shutil.ignore_patterns(".comanage-cache", "users.json")
    )
    with sqlite3.connect(copy / "history.sqlite") as connection:
        connection.execute("DELETE FROM aggregates WHERE metric = 'without_client'")
        connection.execute(
            "UPDATE aggregates SET metric = replace(metric, 'client_os_groups/', 'os_groups/')"
        )
    connection.close()
    old_settings = load_settings(copy / SAMPLE_CONFIG.name)
    old_store = loaded_store(old_settings, history=open_history(old_settings, read_only=True))
    figures = weekly_figures(old_store, old_settings, earlier)
    assert figures["summary"]["os_groups"] is None
    assert figures["summary"]["devices"] == summary["devices"]  # the rest reads as before
    text = summary_html(figures)
    assert "client_os_groups/" not in text and "without_client" not in text
    assert "recorded before the OS figures counted client devices only" in text


def test_weeks_without_data_are_refused(sample_store):
    settings, store = sample_store
    with pytest.raises(ReportError, match="after the current data"):
        weekly_figures(store, settings, "2099-W01")
    with pytest.raises(ReportError, match="no snapshot in 2001-W01"):
        weekly_figures(store, settings, "2001-W01")


def test_the_intune_side_is_reported_with_its_week_over_week_change(sample_store):
    settings, store = sample_store
    figures = weekly_figures(store, settings)
    intune = store.summary()["intune"]
    then = store.past_summary(store.week_ago())["intune"]
    shown = {row["id"]: row for row in figures["intune"]["reconciliation"]}
    for state, count in intune["reconciliation"].items():
        assert shown[state]["count"] == count
        assert shown[state]["delta"] == count - then["reconciliation"][state]
    assert shown["intune-only"]["count"] == intune["intune_only"]
    compliance = {row["id"]: row["count"] for row in figures["intune"]["compliance"]}
    assert compliance == intune["compliance"]
    assert figures["intune"]["authority_mismatch"]["count"] == intune["authority_mismatch"]
    text = plain_text(figures)
    assert "ConfigMgr and Intune" in text and f"{intune['reconciliation']['agree']:,}" in text
    page = report_page.build(store, settings, None, None, None)
    assert by_id(page, "rpt-intune") is not None and by_id(page, "rpt-compliance") is not None
    # without an Intune source: no Intune figures and no section
    plain = dataclasses.replace(settings, intune=None)
    without = loaded_store(plain)
    assert weekly_figures(without, plain)["intune"] is None
    assert "rpt-sec-intune" not in {
        getattr(c, "id", None) for c in walk(report_page.build(without, plain, None, None, None))
    }


def test_without_history_only_the_current_week_is_reported():
    settings = load_settings(SAMPLE_CONFIG)
    store = loaded_store(settings)  # no history store
    figures = weekly_figures(store, settings)
    assert figures["source"] == "current" and figures["kpis"][0]["delta"] is None
    assert "History is off: no week-over-week figures or trends." in figures["notes"]
    monday, _sunday = parse_week(figures["week"])
    earlier = week_of(monday - timedelta(days=7))
    with pytest.raises(ReportError, match=f"no data for {earlier}: history is off"):
        weekly_figures(store, settings, earlier)


def test_cli_refuses_an_unknown_week_with_exit_2(tmp_path):
    done = run_cli(
        "report",
        "--config",
        str(SAMPLE_CONFIG),
        "--out",
        str(tmp_path),
        "--week",
        "2099-W01",
        "--format",
        "html",
    )
    line = assert_one_line_error(done, 2)
    assert "2099-W01 is after the current data" in line
    done = run_cli(
        "report",
        "--config",
        str(SAMPLE_CONFIG),
        "--out",
        str(tmp_path),
        "--week",
        "last week",
        "--format",
        "html",
    )
    assert "ISO week" in assert_one_line_error(done, 2)
    done = run_cli(
        "report", "--config", str(SAMPLE_CONFIG), "--out", str(tmp_path), "--format", "png,docx"
    )
    assert "--format" in assert_one_line_error(done, 2)
    assert list(tmp_path.iterdir()) == []


def test_html_only_needs_no_browser_and_writes_an_earlier_week(tmp_path, monkeypatch, capsys):
    _no_browser(monkeypatch, tmp_path)
    out = tmp_path / "out"
    code = cli.main(
        [
            "report",
            "--config",
            str(SAMPLE_CONFIG),
            "--out",
            str(out),
            "--format",
            "html",
            "--week",
            "2026-W47",
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    text = (out / "co-management-2026-W47.html").read_text(encoding="utf-8")
    assert "2026-W47" in text and "snapshot of 16 Nov 2026" in text


# -- no browser ----------------------------------------------------------------------------


def _no_browser(monkeypatch, tmp_path):
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("COMANAGE_BROWSER", raising=False)
    monkeypatch.setattr(browser_module, "BROWSER_PATHS", ())


def test_missing_browser_exits_2_with_the_install_hint(tmp_path, monkeypatch, capsys):
    _no_browser(monkeypatch, tmp_path)
    code = cli.main(["report", "--config", str(SAMPLE_CONFIG), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "apt-get install chromium" in err and "COMANAGE_BROWSER" in err
    assert not (tmp_path / "o").exists()


def test_configured_browser_that_is_not_there_exits_2(tmp_path, monkeypatch):
    config = write_estate(tmp_path / "estate", devices=60)
    config.write_text('browser = "/nonexistent/chrome"\n' + config.read_text())
    # (COMANAGE_BROWSER, which CI sets, would override the file's setting)
    done = run_cli(
        "report", "--config", str(config), "--out", str(tmp_path / "o"), drop=("COMANAGE_BROWSER",)
    )
    line = assert_one_line_error(done, 2)
    assert "/nonexistent/chrome is not an executable file" in line
    assert "apt-get install chromium" in line


def test_browser_finder_order(tmp_path, monkeypatch):
    fake = tmp_path / "msedge.exe"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    _no_browser(monkeypatch, tmp_path)
    monkeypatch.setattr(
        browser_module, "BROWSER_PATHS", ("%ProgramFiles(x86)%\\nothing.exe", str(fake))
    )
    assert browser_module.chromium_path() == str(fake)
    assert browser_module.chromium_path(environ={"COMANAGE_BROWSER": str(fake)}) == str(fake)
    assert browser_module.chromium_path(str(fake), environ={}) == str(fake)
    assert (
        browser_module._expand(
            "%LocalAppData%\\Google\\Chrome\\Application\\chrome.exe",
            {"LOCALAPPDATA": "C:\\Users\\a\\AppData\\Local"},
        )
        == "C:\\Users\\a\\AppData\\Local\\Google\\Chrome\\Application\\chrome.exe"
    )
    assert browser_module._expand("%ProgramFiles%\\x.exe", {}) is None


# -- hostile text ----------------------------------------------------------------------------

HOSTILE_ORG = '<b onmouseover="alert(1)">Org</b> & "Co"'
HOSTILE_COLLECTION = '<script>alert("collection")</script>'


def _hostile_estate(folder: Path) -> Path:
    config = write_estate(folder, devices=300, seed=3)
    text = config.read_text().replace(
        'organisation = "Contoso (test)"', f"organisation = '{HOSTILE_ORG}'"
    )
    config.write_text(text)
    members = folder / "PS1" / "collections.csv"
    members.write_text(members.read_text().replace("Windows 11 devices", HOSTILE_COLLECTION))
    return config


def test_hostile_text_is_escaped_in_the_html_summary(tmp_path, monkeypatch, capsys):
    _no_browser(monkeypatch, tmp_path)  # html only: no browser needed
    config = _hostile_estate(tmp_path / "estate")
    out = tmp_path / "out"
    assert (
        cli.main(
            ["report", "--config", str(config), "--out", str(out), "--format", "html", "--quiet"]
        )
        == 0
    ), capsys.readouterr().err
    text = next(out.glob("*.html")).read_text(encoding="utf-8")
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert "onerror=" not in text.replace("onerror=&quot;", "")
    assert (
        "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;Bad &lt;b&gt;detail&lt;/b&gt;" in text
    ), "the error detail appears, as text"
    assert HTML_DETAIL not in text
    assert "&lt;b onmouseover=&quot;alert(1)&quot;&gt;Org&lt;/b&gt; &amp; &quot;Co&quot;" in text
    cells = Cells()
    cells.feed(text)
    assert {"script", "img", "b"}.isdisjoint(cells.tags)

    out2 = tmp_path / "out2"
    assert (
        cli.main(
            [
                "report",
                "--config",
                str(config),
                "--out",
                str(out2),
                "--format",
                "html",
                "--collection",
                "CAS00101",
                "--quiet",
            ]
        )
        == 0
    )
    text = next(out2.glob("*.html")).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&quot;collection&quot;)&lt;/script&gt;" in text
    assert "<script" not in text.lower()


def test_output_names_cannot_leave_the_folder(tmp_path):
    from dashboard.report.files import file_name, safe_output_path

    assert file_name("2026-W48", "png") == "co-management-2026-W48.png"
    for week in ("../../etc/passwd", "..\\..\\x", "CON", "a/b"):
        path = safe_output_path(tmp_path, file_name(week, "pdf"))
        assert path.parent == tmp_path.resolve()


# -- settings ----------------------------------------------------------------------------------

BASE = {"sources": [{"site": "PS1", "csv": "x"}]}


def test_report_settings_defaults_and_mail(tmp_path):
    settings = settings_from_dict(BASE, tmp_path / "c.toml")
    assert settings.report.mail is None and settings.report.paper == "A4"
    assert settings.report.out is None and settings.browser == ""
    settings = settings_from_dict(
        {
            **BASE,
            "browser": "msedge",
            "report": {
                "out": "weekly",
                "paper": "letter",
                "mail": {
                    "host": "smtp.example.com",
                    "user": "reports",
                    "password_env": "SMTP_PASSWORD",
                    "from": "reports@example.com",
                    "to": "a@example.com, b@example.com",
                },
            },
        },
        tmp_path / "c.toml",
    )
    mail = settings.report.mail
    assert settings.browser == "msedge"
    assert settings.report.out == (tmp_path / "weekly").resolve()
    assert settings.report.paper == "Letter"
    assert (mail.port, mail.starttls) == (587, True)
    assert mail.to == ("a@example.com", "b@example.com")


@pytest.mark.parametrize(
    ("mail", "message"),
    [
        ({"from": "r@example.com", "to": ["a@example.com"]}, "needs host"),
        ({"host": "h", "to": ["a@example.com"]}, "from must be one e-mail address"),
        ({"host": "h", "from": "r@example.com"}, "to must list at least one"),
        ({"host": "h", "from": "r@example.com", "to": ["not-an-address"]}, "not an e-mail"),
        ({"host": "h", "from": "r@example.com", "to": ["a@example.com"], "port": 0}, "port"),
        (
            {"host": "h", "from": "r@example.com", "to": ["a@example.com"], "starttls": "yes"},
            "starttls",
        ),
        (
            {"host": "h", "from": "r@example.com", "to": ["a@example.com"], "user": "u"},
            "password_env",
        ),
        (
            {
                "host": "h",
                "from": "r@example.com",
                "to": ["a@example.com"],
                "user": "u",
                "password_env": "hunter2 secret",
            },
            "must name an environment variable",
        ),
        (
            {"host": "h", "from": "r@example.com", "to": ["a@example.com"], "password": "x"},
            "unknown key 'password'",
        ),
    ],
)
def test_report_mail_settings_are_validated(tmp_path, mail, message):
    with pytest.raises(SettingsError, match=message):
        settings_from_dict({**BASE, "report": {"mail": mail}}, tmp_path / "c.toml")


def test_report_settings_errors_exit_2(tmp_path):
    config = write_estate(tmp_path / "estate", devices=60)
    config.write_text(config.read_text() + '\n[report]\npaper = "A3"\n')
    done = run_cli("report", "--config", str(config), "--format", "html")
    assert "report.paper must be 'A4' or 'Letter'" in assert_one_line_error(done, 2)


def test_mail_without_mail_settings_exits_2(tmp_path):
    config = write_estate(tmp_path / "estate", devices=60)
    done = run_cli(
        "report",
        "--config",
        str(config),
        "--format",
        "html",
        "--mail",
        "--out",
        str(tmp_path / "o"),
    )
    assert "[report.mail]" in assert_one_line_error(done, 2)


# -- the in-process app and the page -------------------------------------------------------


def test_private_app_answers_only_its_token(sample_store):
    from dashboard.report.command import TOKEN_HEADER, private_app

    settings, store = sample_store
    settings = settings.with_values(auth="users", secret_key="k" * 40)
    app = private_app(settings, store, "the-token")
    client = app.server.test_client()
    assert client.get("/report").status_code == 403
    assert client.get("/report", headers={TOKEN_HEADER: "wrong"}).status_code == 403
    answer = client.get("/report", headers={TOKEN_HEADER: "the-token"})
    assert answer.status_code == 200  # no sign-in asked: auth is off for this app only


def test_report_page_is_routed_but_not_in_the_navbar(sample_store):
    from dashboard.web import app as app_module
    from dashboard.web.pages import report as report_page

    settings, store = sample_store
    assert app_module.find_page("/report") is report_page
    assert not getattr(report_page, "NAV_LABEL", None)
    page = app_module.route(store, settings, "/report", "?week=2026-W47&site=PS1")
    assert page.id == "report" and getattr(page, "data-week") == "2026-W47"
    bad = app_module.route(store, settings, "/report", "?week=2099-W01")
    assert "after the current data" in getattr(bad, "data-error")
    bad = app_module.route(store, settings, "/report", "?site=NOPE&collection=CAS00101")
    assert getattr(bad, "data-error").startswith("unknown site 'NOPE'")


def test_pdf_scale_fits_the_paper():
    from dashboard.report.capture import PAGE_WIDTH, pdf_options

    for paper, width_mm in (("A4", 210), ("Letter", 215.9)):
        options = pdf_options(paper)
        printable_px = (width_mm - 20) * 96 / 25.4
        assert options["format"] == paper and options["print_background"]
        assert PAGE_WIDTH * options["scale"] <= printable_px + 0.5


# -- mail --------------------------------------------------------------------------------------


class SmtpSink:
    """An aiosmtpd server on loopback that keeps what it receives."""

    def __init__(self, authenticate: bool = False):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.envelopes = []
        self.logins: list[tuple[bytes, bytes]] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.envelopes.append(envelope)
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            if isinstance(auth_data, LoginPassword):
                sink.logins.append((auth_data.login, auth_data.password))
                ok = auth_data.login == b"reporter" and auth_data.password == PASSWORD.encode()
                return AuthResult(success=ok, handled=False)
            return AuthResult(success=False, handled=False)

        extra = {"authenticator": authenticator, "auth_require_tls": False} if authenticate else {}
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **extra)
        self.controller.start()

    def close(self):
        self.controller.stop()


@pytest.fixture
def smtp_sink():
    sink = SmtpSink(authenticate=True)
    yield sink
    sink.close()


def _mail_config(folder: Path, port: int, user: bool = True) -> Path:
    config = write_estate(folder, devices=300, seed=5)
    credentials = 'user = "reporter"\npassword_env = "TEST_SMTP_PASSWORD"\n' if user else ""
    config.write_text(
        config.read_text()
        + (
            f'\n[report.mail]\nhost = "127.0.0.1"\nport = {port}\nstarttls = false\n'
            f'{credentials}from = "reports@example.com"\n'
            'to = ["it-team@example.com", "lead@example.com"]\n'
        )
    )
    return config


@pytest.mark.browser
def test_mail_sends_the_summary_with_png_and_pdf_attached(tmp_path, smtp_sink):
    config = _mail_config(tmp_path / "estate", smtp_sink.port)
    out = tmp_path / "out"
    done = run_cli(
        "report",
        "--config",
        str(config),
        "--out",
        str(out),
        "--mail",
        env={"TEST_SMTP_PASSWORD": PASSWORD},
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert smtp_sink.logins == [(b"reporter", PASSWORD.encode())]
    assert len(smtp_sink.envelopes) == 1
    envelope = smtp_sink.envelopes[0]
    assert envelope.mail_from == "reports@example.com"
    assert sorted(envelope.rcpt_tos) == ["it-team@example.com", "lead@example.com"]
    message = message_from_bytes(envelope.original_content, policy=policy.default)
    week = week_of(date(2026, 11, 20))
    assert message["Subject"] == f"Co-management weekly report {week} – Contoso (test)"
    assert message["From"] == "reports@example.com"
    assert message["To"] == "it-team@example.com, lead@example.com"
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    assert html_part.get_content().replace("\r\n", "\n") == (
        out / f"co-management-{week}.html"
    ).read_text(encoding="utf-8")
    assert "Co-management weekly report" in text_part.get_content()
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert sorted(attachments) == [f"co-management-{week}.pdf", f"co-management-{week}.png"]
    png = attachments[f"co-management-{week}.png"]
    pdf = attachments[f"co-management-{week}.pdf"]
    assert png.get_content_type() == "image/png"
    assert pdf.get_content_type() == "application/pdf"
    assert png.get_content() == (out / f"co-management-{week}.png").read_bytes()
    assert pdf.get_content() == (out / f"co-management-{week}.pdf").read_bytes()
    from PIL import Image

    assert Image.open(BytesIO(png.get_content())).width == 1200


def test_mail_refused_sign_in_is_one_line_without_the_password(tmp_path, smtp_sink):
    config = _mail_config(tmp_path / "estate", smtp_sink.port)
    done = run_cli(
        "report",
        "--config",
        str(config),
        "--out",
        str(tmp_path / "o"),
        "--format",
        "html",
        "--mail",
        env={"TEST_SMTP_PASSWORD": "wrong-" + PASSWORD},
    )
    line = assert_one_line_error(done, 1)
    assert "refused the sign-in of 'reporter'" in line
    assert PASSWORD not in done.stdout + done.stderr
    assert smtp_sink.envelopes == []


def test_mail_password_variable_missing_exits_2(tmp_path, smtp_sink):
    config = _mail_config(tmp_path / "estate", smtp_sink.port)
    done = run_cli(
        "report",
        "--config",
        str(config),
        "--out",
        str(tmp_path / "o"),
        "--format",
        "html",
        "--mail",
        drop=("TEST_SMTP_PASSWORD",),
    )
    assert "TEST_SMTP_PASSWORD" in assert_one_line_error(done, 2)


def test_mail_server_that_is_down_exits_1(tmp_path):
    config = _mail_config(tmp_path / "estate", free_port(), user=False)
    done = run_cli(
        "report",
        "--config",
        str(config),
        "--out",
        str(tmp_path / "o"),
        "--format",
        "html",
        "--mail",
    )
    assert "cannot send the report through 127.0.0.1" in assert_one_line_error(done, 1)


def test_starttls_required_but_not_offered_is_refused(tmp_path):
    sink = SmtpSink()
    try:
        config = _mail_config(tmp_path / "estate", sink.port, user=False)
        config.write_text(config.read_text().replace("starttls = false", "starttls = true"))
        done = run_cli(
            "report",
            "--config",
            str(config),
            "--out",
            str(tmp_path / "o"),
            "--format",
            "html",
            "--mail",
        )
        assert "does not offer STARTTLS" in assert_one_line_error(done, 1)
        assert sink.envelopes == []
    finally:
        sink.close()


def test_smtp_module_is_what_sends():
    from dashboard.report import mail

    assert mail.smtplib is smtplib


# -- auth: the in-process app, and --url of a protected dashboard --------------------------


@pytest.fixture(scope="module")
def protected_dashboard(tmp_path_factory):
    """The factory estate served with auth = "users" (an account ``reporter``)."""
    from dashboard.report.capture import serving
    from dashboard.web.app import create_app
    from dashboard.web.auth import UserFile

    folder = tmp_path_factory.mktemp("protected")
    config = write_estate(folder, devices=300, seed=9)
    config.write_text('auth = "users"\nsecret_key = "' + "s" * 40 + '"\n' + config.read_text())
    UserFile(folder / "users.json").add("reporter", PASSWORD)
    settings = load_settings(config)
    store = EstateStore(settings)
    assert store.refresh()
    with serving(create_app(settings, store)) as url:
        yield config, url


@pytest.mark.browser
def test_report_works_in_process_when_auth_is_on(tmp_path, protected_dashboard):
    config, _url = protected_dashboard
    done = run_cli("report", "--config", str(config), "--out", str(tmp_path), "--format", "png")
    assert done.returncode == 0, done.stderr
    assert [p.suffix for p in tmp_path.iterdir()] == [".png"]


@pytest.mark.browser
def test_url_of_a_protected_dashboard_needs_a_sign_in(tmp_path, protected_dashboard):
    config, url = protected_dashboard
    done = run_cli(
        "report", "--config", str(config), "--out", str(tmp_path), "--url", url, "--format", "html"
    )
    assert "asks for a sign-in" in assert_one_line_error(done, 2)
    done = run_cli(
        "report",
        "--config",
        str(config),
        "--out",
        str(tmp_path),
        "--url",
        url,
        "--format",
        "html",
        "--user",
        "reporter",
        env={"COMANAGE_REPORT_PASSWORD": "wrong password!"},
    )
    assert "refused the sign-in of 'reporter'" in assert_one_line_error(done, 2)


@pytest.mark.browser
def test_url_report_signs_in_and_uses_the_servers_figures(tmp_path, protected_dashboard):
    config, url = protected_dashboard
    done = run_cli(
        "report",
        "--config",
        str(config),
        "--out",
        str(tmp_path),
        "--url",
        url,
        "--format",
        "html,pdf",
        "--user",
        "reporter",
        "--site",
        "PS1",
        env={"COMANAGE_REPORT_PASSWORD": PASSWORD},
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    html_file = next(tmp_path.glob("*.html"))
    cells = Cells()
    cells.feed(html_file.read_text(encoding="utf-8"))
    summary = cli_summary(config, "--site", "PS1")
    assert number(cells.metrics["devices"]) == summary["devices"]
    assert number(cells.metrics["comanaged"]) == summary["comanaged"]
    assert "Site PS1" in html_file.read_text(encoding="utf-8")
    assert next(tmp_path.glob("*.pdf")).read_bytes().startswith(b"%PDF")


# -- the page in a browser -----------------------------------------------------------------


@pytest.mark.browser
def test_report_page_is_static_print_friendly_and_error_free(sample_store):
    from playwright.sync_api import sync_playwright

    from dashboard.report.capture import (
        chromium,
        chromium_path,
        serving,
        wait_for_dash,
    )
    from dashboard.web.app import create_app

    settings, store = sample_store
    try:
        executable = chromium_path()
    except ReportError as error:
        pytest.fail(f"browser tests need Chromium: {error}", pytrace=False)
    errors: list[str] = []
    with (
        serving(create_app(settings, store)) as url,
        sync_playwright() as playwright,
        chromium(playwright, executable) as browser,
    ):
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/report?site=PS1&collection=CAS00101")
        page.wait_for_selector("#report")
        graphs = int(page.get_attribute("#report", "data-graphs"))
        wait_for_dash(page, graphs=graphs)
        assert graphs == 6
        assert page.locator("#report .js-plotly-plot").count() == graphs
        assert page.locator(".modebar").count() == 0  # static charts
        assert not page.locator(".navbar").is_visible()
        assert not page.locator(".status-header").is_visible()
        box = page.locator("#report").bounding_box()
        assert box["width"] == 1200 and box["x"] == 0
        assert "Site PS1" in page.text_content("#rpt-scope")
        assert "(CAS00101)" in page.text_content("#rpt-scope")
        data = json.loads(page.text_content("#report-data"))
        assert data["summary"] == store.summary("PS1", "CAS00101")
        assert page.locator("#report-data").is_hidden()
    assert errors == []

"""Web security (issue 7) without a browser: headers and the Content-Security-Policy on every
kind of response, hostile text from the site database kept as text, hostile URL parameters
rejected or taken literally, file names that cannot leave their folder.
``test_browser_security.py`` checks the same in Chromium (no dialog, no CSP violation)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
from pathlib import Path

import pytest

from dashboard.report.files import UnsafePathError, safe_filename, safe_output_path
from dashboard.settings import load_settings
from dashboard.web import security
from dashboard.web.app import create_app, route
from dashboard.web.links import parse_query
from dashboard.web.pages import devices, overview
from tests.factories import loaded_store
from tests.helpers import router_request
from tests.web.hostile_estate import (
    FORMULA_NAME,
    QUOTE_ID,
    QUOTE_NAME,
    XSS_DETAIL,
    XSS_ID,
    XSS_NAME,
    write_hostile_estate,
)

ROOT = Path(__file__).resolve().parents[2]
INJECTION = "' OR 1=1 --"


@pytest.fixture(scope="module")
def hostile_settings(tmp_path_factory):
    return load_settings(write_hostile_estate(tmp_path_factory.mktemp("hostile")))


@pytest.fixture(scope="module")
def hostile_store(hostile_settings):
    store = loaded_store(hostile_settings)
    return store


@pytest.fixture(scope="module")
def hostile_app(hostile_settings, hostile_store):
    return create_app(hostile_settings, hostile_store)


@pytest.fixture
def client(hostile_app):
    return hostile_app.server.test_client()


def walk(node):
    if isinstance(node, list | tuple):
        for item in node:
            yield from walk(item)
    elif node is not None and not isinstance(node, str | int | float):
        yield node
        yield from walk(getattr(node, "children", None))


def texts(node) -> list[str]:
    """Every string child in a component tree (what React renders as text nodes)."""
    found = []
    if isinstance(node, str):
        found.append(node)
    elif isinstance(node, list | tuple):
        for item in node:
            found += texts(item)
    elif node is not None and not isinstance(node, int | float):
        found += texts(getattr(node, "children", None))
    return found


def no_raw_html(tree) -> None:
    for component in walk(tree):
        assert not getattr(component, "dangerously_allow_html", False), component
        assert type(component).__name__ not in ("Iframe", "Markdown", "Script"), component


# -- headers -----------------------------------------------------------------------------------

CALLBACK = router_request("/devices")


def every_kind_of_response(client):
    yield "page", client.get("/")
    yield "deep page", client.get("/devices?site=PS1")
    yield "layout", client.get("/_dash-layout")
    yield "dependencies", client.get("/_dash-dependencies")
    yield "callback", client.post("/_dash-update-component", json=CALLBACK)
    yield "export", client.get("/export/devices.csv")
    yield "asset", client.get("/assets/02-dashboard.css")
    yield "health", client.get("/healthz")
    yield "rejected export", client.get("/export/devices.csv?nope=1")


def test_every_response_carries_the_security_headers(client):
    for kind, response in every_kind_of_response(client):
        assert response.status_code in (200, 400), kind
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff", kind
        assert headers["Referrer-Policy"] == "same-origin", kind
        assert headers["X-Frame-Options"] == "DENY", kind
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, kind
        if kind != "asset":
            assert headers["Cache-Control"] == "no-store", kind


def directives(policy: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def test_csp_allows_no_foreign_script(client):
    policy = directives(client.get("/").headers["Content-Security-Policy"])
    script = policy["script-src"]
    assert script[0] == "'self'"
    assert all(value.startswith("'sha256-") for value in script[1:])
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    for name in ("default-src", "connect-src", "base-uri", "form-action"):
        assert policy[name] == ["'self'"], name
    assert policy["img-src"] == ["'self'", "data:"]
    assert not any(
        "http" in value or value == "*" for values in policy.values() for value in values
    )


def inline_scripts(html: str) -> list[str]:
    """The bodies of the executable inline scripts of a page."""
    scripts = []
    html = re.sub(r"<!--.*?-->", "", html, flags=re.S)  # e.g. Dash's IE notice: never runs
    for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        if "src=" in attributes:
            continue
        kind = re.search(r'type="([^"]+)"', attributes)
        if kind and kind.group(1) not in ("application/javascript", "text/javascript", "module"):
            continue  # data blocks (Dash's JSON config) never run
        scripts.append(body)
    return scripts


def test_every_inline_script_dash_renders_is_hashed_in_the_policy(client):
    response = client.get("/")
    html = response.get_data(as_text=True)
    allowed = directives(response.headers["Content-Security-Policy"])["script-src"]
    bodies = inline_scripts(html)
    assert bodies, "Dash renders its renderer inline"
    for body in bodies:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed, body[:80]


def test_pages_load_nothing_from_other_sites(client):
    html = client.get("/").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls


def test_health_endpoint_says_ok_and_nothing_else(client):
    response = client.get("/healthz")
    assert response.get_data(as_text=True) == "ok" and response.mimetype == "text/plain"


def test_cross_site_posts_are_refused(client):
    refused = client.post(
        "/_dash-update-component", json=CALLBACK, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert refused.status_code == 403
    accepted = client.post(
        "/_dash-update-component", json=CALLBACK, headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert accepted.status_code == 200


def test_callbacks_accept_json_only(client):
    """A cross-site HTML form can only send form or text bodies: Dash refuses them."""
    response = client.post(
        "/_dash-update-component",
        data="output=page.children",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code in (400, 415)


# -- hostile text from the site database ------------------------------------------------------


def test_no_component_ever_renders_raw_html():
    sources = [p for p in (ROOT / "dashboard").rglob("*.py")]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert "dangerously_allow_html=True" not in text, path
        assert "srcDoc" not in text, path
    for path in (ROOT / "dashboard" / "web" / "assets").glob("*.js"):
        text = path.read_text(encoding="utf-8")
        for sink in (
            "innerHTML",
            "outerHTML",
            "dangerouslySetInnerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert sink not in text, (path, sink)


def test_hostile_detail_is_text_on_the_overview(hostile_store, hostile_settings):
    outputs = overview.render(hostile_store, hostile_settings, None, None)
    no_raw_html(list(outputs.values()) if isinstance(outputs, dict) else outputs)
    rendered = texts(list(outputs.values()) if isinstance(outputs, dict) else outputs)
    assert XSS_DETAIL in rendered  # the unknown code's detail, as one text node


def test_hostile_name_and_detail_are_text_on_the_device_page(hostile_store, hostile_settings):
    for rid in (XSS_ID, QUOTE_ID):
        page = route(hostile_store, hostile_settings, f"/device/{rid}", "?site=PS1")
        no_raw_html(page)
        rendered = texts(page)
        assert XSS_NAME in rendered or QUOTE_NAME in rendered
        assert any(XSS_DETAIL in text for text in rendered)


def test_hostile_name_is_plain_data_for_the_grid(hostile_store):
    rows = devices.get_rows(
        hostile_store,
        {"startRow": 0, "endRow": 500, "sortModel": [{"colId": "name", "sort": "asc"}]},
        [("q", "<")],
    )["rowData"]
    names = {row["name"] for row in rows}
    assert {XSS_NAME, QUOTE_NAME} <= names
    assert all(row["error"] == XSS_DETAIL for row in rows if row["name"] == XSS_NAME)
    # the grid's columns render values as text (no HTML renderer, no raw-HTML flag)
    for column in devices.COLUMNS:
        assert column.get("cellRenderer") in (None, "DeviceLink", "AttentionBadges")
        assert "cellRendererParams" not in column


def test_hostile_text_stays_inert_in_the_export(client):
    response = client.get("/export/devices.csv?site=PS1&q=%3C")
    assert response.mimetype == "text/csv"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    names = {row["Name"] for row in rows}
    assert XSS_NAME in names and QUOTE_NAME in names
    formula = client.get("/export/devices.csv?site=PS1&q=HYPERLINK").get_data(as_text=True)
    assert "'" + FORMULA_NAME.replace('"', '""') in formula  # a formula is quoted away


def test_device_callback_response_is_json_not_markup(client):
    body = router_request(f"/device/{XSS_ID}", "?site=PS1")
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.json  # parsed as data; the name is a string value inside it
    assert XSS_NAME in response.get_data(as_text=True).encode().decode("unicode_escape")


# -- hostile URL parameters --------------------------------------------------------------------


def test_sql_like_collection_is_ignored_on_the_overview(hostile_store, hostile_settings):
    site, collection, notes = overview.filters_from_search(
        hostile_store, hostile_settings, "?collection=" + INJECTION.replace(" ", "%20")
    )
    assert (site, collection) == (None, None)
    assert notes and "ignored" in notes[0]


@pytest.mark.parametrize(
    "query",
    [
        {"collection": [INJECTION]},
        {"site": ["PS1' --"]},
        {"error": ["0x1' OR '1'='1"]},
        {"funnel": ["enrolled; DROP TABLE v_R_System"]},
        {"release": ["<script>"]},
        {"nope": ["1"]},
    ],
)
def test_sql_like_device_filters_are_rejected(hostile_store, query):
    flt = hostile_store.device_filter(query)
    assert flt.rejected and not flt.values


def test_sql_like_filters_are_rejected_by_the_export(client):
    response = client.get("/export/devices.csv?collection=%27%20OR%201%3D1%20--")
    assert response.status_code == 400
    assert response.mimetype == "text/plain"


def test_search_text_is_a_literal(hostile_store):
    everything = int(hostile_store.matching(hostile_store.device_filter({})).sum())
    for text in (INJECTION, ".*", "%", "[a-z]", "\\"):
        flt = hostile_store.device_filter(
            parse_query("q=" + text.replace("%", "%25").replace(" ", "%20"))
        )
        assert flt.values.get("q") == (text,)
        assert int(hostile_store.matching(flt).sum()) < everything, text


def test_collection_ids_reach_sql_as_bound_parameters(tmp_path):
    """A configured collection ID holding SQL is matched literally by the SQL source."""
    from datetime import UTC, datetime

    from dashboard.data.sample import generate_estate, write_sqlite
    from dashboard.settings import settings_from_dict

    replicas = write_sqlite(
        generate_estate(300, seed=5, as_of=datetime(2026, 11, 20, tzinfo=UTC)),
        tmp_path / "replica.sqlite",
    )
    raw = {
        "sources": [{"site": site, "url": f"sqlite:///{path}"} for site, path in replicas.items()],
        "collections": {"filter": ["SMS00001", INJECTION]},
    }
    settings = settings_from_dict(raw, tmp_path / "c.toml")
    store = loaded_store(settings)
    estate = store.estate
    assert estate.collection_mask(INJECTION).sum() == 0
    assert estate.collection_mask("SMS00001").sum() == len(estate.devices)


# -- output paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "report.html",
        "co-management 2026-11-20.pdf",
        "a.b.c",
        "devices-20261120-1200.csv",
        "Résumé.html",
    ],
)
def test_plain_names_stay_in_their_folder(tmp_path, name):
    assert safe_output_path(tmp_path, name) == tmp_path.resolve() / name


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "../x.html",
        "..\\x.html",
        "a/b.html",
        "/etc/passwd",
        "C:\\x.html",
        "C:x.html",
        "x\x00.html",
        "x\n.html",
        "CON",
        "nul.txt",
        "com1.csv",
        "LPT9",
        "name.",
        "name ",
        " name",
        "a" * 151,
        "x|y",
        "x?y",
        "x*y",
        'x"y',
        "x<y",
        "x>y",
    ],
)
def test_unsafe_names_are_refused(tmp_path, name):
    with pytest.raises(UnsafePathError):
        safe_output_path(tmp_path, name)


@pytest.mark.skipif(os.name != "posix", reason="symbolic links need privileges on Windows")
def test_a_link_out_of_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "report.html").symlink_to(outside / "report.html")
    with pytest.raises(UnsafePathError, match="would leave"):
        safe_output_path(folder, "report.html")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Contoso Ltd / Paris", "Contoso-Ltd-Paris"),
        ("../../etc/passwd", "etc-passwd"),
        ("CON", "report"),
        ("", "report"),
        ("Société Générale", "Societe-Generale"),
        ("a..b", "a.b"),
        ("<script>", "script"),
    ],
)
def test_safe_filename_makes_names_that_pass(tmp_path, text, expected):
    name = safe_filename(text)
    assert name == expected
    safe_output_path(tmp_path, name)


def test_policy_text_is_stable():
    text = security.content_security_policy(["'sha256-abc'"])
    assert text.startswith("default-src 'self'; script-src 'self' 'sha256-abc';")

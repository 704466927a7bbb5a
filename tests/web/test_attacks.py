"""Security, second pass (issue 13): what an attack on a running server found, one test (or
a few) per finding, through the WSGI app as a server would call it (the Flask test client)
or a real server process. Each failed before its fix."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from dashboard.data import cache
from dashboard.data.history import open_history
from dashboard.model import device_query
from dashboard.model.device_query import FilterTooLarge, export_chunks, parse_filter
from dashboard.service.store import EstateStore
from dashboard.web import app as web_app
from dashboard.web import auth, gate
from dashboard.web.app import create_app
from dashboard.web.export import stream_csv
from tests.helpers import free_port, router_request

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
SECRET = "s" * 48


def callback(output: str, inputs: list, state: list) -> dict:
    """A Dash callback request body (what the browser POSTs)."""
    component, prop = output.split(".")
    return {
        "output": output,
        "outputs": {"id": component, "property": prop},
        "inputs": inputs,
        "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
        "state": state,
    }


def rows_request(request, pairs=()) -> dict:
    return callback(
        "devices-grid.getRowsResponse",
        [{"id": "devices-grid", "property": "getRowsRequest", "value": request}],
        [{"id": "devices-query", "property": "data", "value": list(pairs)}],
    )


ROUTER = router_request("/")


@pytest.fixture
def client(factory_settings, factory_store):
    return create_app(factory_settings, factory_store).server.test_client()


def codes(count: int) -> list[str]:
    return [f"0x{i:08X}" for i in range(count)]


# -- 1. filter parsing in linear time, and a cap -------------------------------------------------


def test_many_filter_values_are_parsed_in_linear_time(monkeypatch):
    monkeypatch.setattr(device_query, "MAX_FILTER_VALUES", 10**6)  # the parsing itself
    started = time.perf_counter()
    flt = parse_filter({"error": codes(20_000)}, ["PS1"], [], [])
    seconds = time.perf_counter() - started
    assert len(flt.values["error"]) == 20_000 and not flt.rejected
    assert seconds < 1.0, f"20,000 values took {seconds:.2f} s"


def test_a_filter_beyond_the_cap_is_refused_quickly():
    started = time.perf_counter()
    with pytest.raises(FilterTooLarge, match="too many values for filter 'error'"):
        parse_filter({"error": codes(20_000)}, ["PS1"], [], [])
    assert time.perf_counter() - started < 1.0
    cap = device_query.MAX_FILTER_VALUES
    assert len(parse_filter({"error": codes(cap)}, [], [], []).values["error"]) == cap


def test_the_export_and_the_grid_answer_400_beyond_the_cap(client):
    query = "&".join(f"error={code}" for code in codes(14_000))
    started = time.perf_counter()
    response = client.get(f"/export/devices.csv?{query}")
    assert response.status_code == 400
    assert "too many values for filter 'error'" in response.get_data(as_text=True)
    assert time.perf_counter() - started < 1.0
    body = rows_request({"startRow": 0, "endRow": 100}, [["error", code] for code in codes(20_000)])
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 400
    assert "too many values" in response.get_data(as_text=True)


# -- 2. the Host header --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8050",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "10.1.2.3",
    ],
)
def test_no_auth_answers_loopback_host_names_only(client, host):
    response = client.get("/export/devices.csv", headers={"Host": host})
    assert response.status_code == 400
    assert "allowed_hosts" in response.get_data(as_text=True)
    assert client.get("/", headers={"Host": host}).status_code == 400


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:8050",
        "LOCALHOST.",
        "127.0.0.1",
        "127.0.0.1:8050",
        "127.1.2.3:80",
        "[::1]",
        "[::1]:8050",
    ],
)
def test_loopback_host_names_are_answered(client, host):
    assert client.get("/export/devices.csv", headers={"Host": host}).status_code == 200


def test_allowed_hosts_are_answered_too(factory_settings, factory_store):
    settings = factory_settings.with_values(allowed_hosts="dash.example.com, 10.1.2.3")
    client = create_app(settings, factory_store).server.test_client()
    for host in ("dash.example.com", "DASH.example.com:443", "10.1.2.3:8050"):
        assert client.get("/export/devices.csv", headers={"Host": host}).status_code == 200
    assert client.get("/export/devices.csv", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 200


def test_with_sign_in_a_configured_allowed_hosts_is_enforced(
    factory_settings, factory_store, tmp_path
):
    users = tmp_path / "users.json"
    auth.UserFile(users).add("alice", PASSWORD)
    settings = factory_settings.with_values(auth="users", users_file=str(users), secret_key=SECRET)
    open_app = create_app(settings, factory_store).server.test_client()
    assert open_app.get("/login", headers={"Host": "dash.example.com"}).status_code == 200
    pinned = create_app(
        settings.with_values(allowed_hosts="dash.example.com"), factory_store
    ).server.test_client()
    assert pinned.get("/login", headers={"Host": "dash.example.com"}).status_code == 200
    assert pinned.get("/login", headers={"Host": "evil.example"}).status_code == 400
    assert pinned.get("/login", headers={"Host": "localhost:8050"}).status_code == 200


# -- 3. anonymous access beyond loopback, in the app itself -------------------------------------


@pytest.mark.parametrize("peer", ["192.0.2.10", "10.0.0.5", "::ffff:192.0.2.10", "2001:db8::1"])
def test_no_auth_refuses_other_computers_in_the_app(client, peer):
    response = client.get(
        "/export/devices.csv",
        environ_base={"REMOTE_ADDR": peer},
        headers={"X-Forwarded-For": "127.0.0.1"},
    )
    assert response.status_code == 403
    assert "allow_anonymous" in response.get_data(as_text=True)
    assert (
        client.post(
            "/_dash-update-component", json=ROUTER, environ_base={"REMOTE_ADDR": peer}
        ).status_code
        == 403
    )
    assert (
        client.get("/export/devices.csv", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code
        == 200
    )


def test_allow_anonymous_opens_the_app_to_other_computers(factory_settings, factory_store):
    settings = factory_settings.with_values(allow_anonymous=True)
    client = create_app(settings, factory_store).server.test_client()
    assert (
        client.get("/export/devices.csv", environ_base={"REMOTE_ADDR": "192.0.2.10"}).status_code
        == 200
    )


def test_the_wsgi_entry_point_runs_the_start_checks(factory_config, tmp_path, monkeypatch):
    import dashboard.web.wsgi as wsgi

    monkeypatch.setenv("COMANAGE_CONFIG", str(factory_config))
    monkeypatch.setenv("COMANAGE_AUTH", "users")
    monkeypatch.setenv("COMANAGE_USERS_FILE", str(tmp_path / "nobody.json"))
    monkeypatch.setenv("COMANAGE_SECRET_KEY", SECRET)
    monkeypatch.setattr(wsgi, "_app", None)
    with pytest.raises(auth.AuthError, match="holds no account"):
        wsgi.get_app()
    assert wsgi._app is None


# -- 4 and 5. sign-in throttling -----------------------------------------------------------------


@pytest.fixture
def users_file(tmp_path) -> Path:
    path = tmp_path / "users.json"
    auth.UserFile(path).add("alice", PASSWORD)
    return path


def users_client(factory_settings, factory_store, users_file, **values):
    settings = factory_settings.with_values(
        auth="users", users_file=str(users_file), secret_key=SECRET, **values
    )
    app = create_app(settings, factory_store)
    return app, app.server.test_client()


def sign_in(client, password=PASSWORD, name="alice", **request):
    import re

    page = client.get("/login", **request).get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return client.post(
        "/login", data={"csrf": token, "username": name, "password": password}, **request
    )


def test_failures_elsewhere_do_not_lock_the_user_out(factory_settings, factory_store, users_file):
    app, attacker = users_client(factory_settings, factory_store, users_file)
    there = {"environ_base": {"REMOTE_ADDR": "192.0.2.66"}}
    for _ in range(6):
        assert sign_in(attacker, "wrong password", **there).status_code in (401, 429)
    user = app.server.test_client()
    here = {"environ_base": {"REMOTE_ADDR": "192.0.2.10"}}
    assert sign_in(user, **here).status_code == 302
    app.auth.state.close()


def test_failures_from_one_address_grow_the_delay(
    factory_settings, factory_store, users_file, monkeypatch
):
    app, client = users_client(factory_settings, factory_store, users_file)
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    for _ in range(auth.PER_USER_AND_ADDRESS.free):
        assert sign_in(client, "wrong password").status_code == 401
    refused = sign_in(client)  # even the right password waits now ...
    assert refused.status_code == 429
    assert "Try again in 5 seconds." in refused.get_data(as_text=True)
    clock[0] += 6  # ... but only a little
    assert sign_in(client, "wrong password").status_code == 401
    refused = sign_in(client)
    assert "Try again in 10 seconds." in refused.get_data(as_text=True)  # growing
    clock[0] += 11
    assert sign_in(client).status_code == 302
    app.auth.state.close()


def test_growing_delays():
    throttle = auth.Throttle(free=3, base=2, cap=300)
    assert auth.PER_USER_AND_ADDRESS.wait([0, 1, 2, 3, 4, 5], now=5) == 40
    assert throttle.wait([100, 101], now=102) == 0
    assert throttle.wait([100, 101, 102], now=102) == 2
    assert throttle.wait([100, 101, 102, 103], now=103) == 4
    assert throttle.wait([100] * 20, now=100) == 300
    assert throttle.wait([100] * 20, now=401) == 0


def test_behind_a_trusted_proxy_each_client_has_its_own_throttle(
    factory_settings, factory_store, users_file
):
    app, client = users_client(
        factory_settings, factory_store, users_file, trusted_proxies="127.0.0.1"
    )
    attacker = {"headers": {"X-Forwarded-For": "203.0.113.9"}}
    for _ in range(8):
        sign_in(client, "wrong password", **attacker)
    assert sign_in(client, **attacker).status_code == 429
    user = app.server.test_client()
    # the client's own claim further left proves nothing; the proxy's entry decides
    real = {"headers": {"X-Forwarded-For": "203.0.113.9, 198.51.100.4"}}
    assert sign_in(user, **real).status_code == 302
    app.auth.state.close()


def test_forwarded_for_is_ignored_from_untrusted_peers(factory_settings, factory_store, users_file):
    app, client = users_client(factory_settings, factory_store, users_file)
    for index in range(8):  # a fresh forged address each time changes nothing
        sign_in(client, "wrong password", headers={"X-Forwarded-For": f"198.51.100.{index}"})
    assert sign_in(client, headers={"X-Forwarded-For": "198.51.100.200"}).status_code == 429
    app.auth.state.close()


def test_concurrent_attempts_are_counted_before_hashing(
    factory_settings, factory_store, users_file, monkeypatch
):
    app, _client = users_client(factory_settings, factory_store, users_file)
    hashed = []
    verify = auth.UserFile.verify

    def counting(self, name, password):
        hashed.append(name)
        return verify(self, name, password)

    monkeypatch.setattr(auth.UserFile, "verify", counting)
    clients = [app.server.test_client() for _ in range(12)]
    tokens = []
    for one in clients:
        import re

        page = one.get("/login").get_data(as_text=True)
        tokens.append(re.search(r'name="csrf" value="([^"]+)"', page).group(1))
    start = threading.Barrier(len(clients))
    statuses = []

    def attempt(one, token):
        start.wait()
        statuses.append(
            one.post(
                "/login", data={"csrf": token, "username": "alice", "password": "wrong password"}
            ).status_code
        )

    threads = [
        threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(hashed) <= auth.PER_USER_AND_ADDRESS.free, hashed
    assert sorted(statuses).count(429) >= len(clients) - auth.PER_USER_AND_ADDRESS.free
    app.auth.state.close()


# -- 6. file modes -------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_cache_files_are_private_in_a_private_folder(factory_store, tmp_path, open_umask):
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    target = cache.write_cache(factory_store.estate, folder, "key")
    assert mode(folder) == 0o700 and mode(target) == 0o700
    for file in [*target.iterdir(), folder / cache.POINTER]:
        assert mode(file) == 0o600, file
    with cache.refresh_lock(folder) as mine:
        assert mine and mode(folder / cache.LOCK) == 0o600


def test_history_is_private(factory_settings, tmp_path, open_umask):
    settings = factory_settings.with_values(history_url=str(tmp_path / "new" / "history.sqlite"))
    history = open_history(settings)
    history.trend(None, None)
    path = tmp_path / "new" / "history.sqlite"
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_a_readable_config_holding_a_secret_is_warned_about(factory_config, tmp_path):
    from dashboard.settings import load_settings

    config = tmp_path / "comanage.toml"
    config.write_text(
        factory_config.read_text().replace(
            "[[sources]]", f'secret_key = "{SECRET}"\n\n[[sources]]', 1
        )
    )
    sources = factory_config.parent
    config.write_text(config.read_text().replace('csv = "', f'csv = "{sources}/'))
    config.chmod(0o644)
    notes = auth.preflight(load_settings(config))
    assert any("readable by other users" in note and "secret_key" in note for note in notes)
    assert SECRET not in " ".join(notes)
    config.chmod(0o600)
    assert not any("readable" in note for note in auth.preflight(load_settings(config)))


# -- 7. one CSV neutraliser for every text column ------------------------------------------------

HOSTILE = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "＝1+1", "＋1", "－1", "＠x"]


def hostile_devices(devices):
    devices = devices.iloc[: len(HOSTILE)].copy()
    for column in ("site", "Name", "Domain"):
        devices[column] = devices[column].astype(object)
    devices["site"] = HOSTILE
    devices["Name"] = HOSTILE[::-1]
    devices["Domain"] = HOSTILE
    return devices


def test_every_text_column_of_the_export_is_neutralised(factory_store):
    devices = hostile_devices(factory_store.estate.devices)
    frame = next(export_chunks(devices, np.arange(len(devices)))).to_pandas()
    for column in ("Site", "Name", "Domain"):
        assert all(value.startswith("'") for value in frame[column]), column
    assert list(frame["Site"]) == ["'" + value for value in HOSTILE]


def test_the_csv_download_has_no_formula_cell(factory_store):
    class Estate:
        def __init__(self, devices):
            self.devices = devices

    devices = hostile_devices(factory_store.estate.devices)
    text = "".join(stream_csv(Estate(devices), np.arange(len(devices)), "entra"))
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    starts = tuple("=+-@\t\r\n＝＋－＠")
    for row in rows[1:]:
        assert not any(cell.startswith(starts) for cell in row), row


# -- 8. --debug never serves the Werkzeug console -------------------------------------------------


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def test_debug_mode_does_not_serve_the_console(factory_config):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dashboard",
            "serve",
            "--debug",
            "--config",
            str(factory_config),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
        _status, body = get(f"http://127.0.0.1:{port}/console")  # Dash's page, if anything
        assert "Werkzeug" not in body and "Interactive Console" not in body
        assert "__debugger__" not in body and "EVALEX" not in body
        _status, body = get(
            f"http://127.0.0.1:{port}/console?__debugger__=yes&cmd=resource&f=debugger.js"
        )
        assert "EVALEX" not in body and "CONSOLE_MODE" not in body
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- 9. request bodies are capped ----------------------------------------------------------------


def test_large_bodies_get_413(client):
    big = b"[" + b"0," * (gate.MAX_BODY_BYTES // 2) + b"0]"
    response = client.post("/_dash-update-component", data=big, content_type="application/json")
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
    # no Content-Length (a chunked body, already decoded by the server): capped while read
    chunked = client.post(
        "/_dash-update-component",
        input_stream=io.BytesIO(big),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert chunked.status_code == 413


def test_serve_caps_bodies_in_waitress_too(factory_settings, monkeypatch):
    import waitress.server

    from dashboard.web import server

    seen = {}

    class Fake:
        def run(self):
            pass

        def close(self):
            pass

    def create_server(app, **kwargs):
        seen.update(kwargs)
        return Fake()

    monkeypatch.setattr(waitress.server, "create_server", create_server)
    server.serve(factory_settings.with_values(history_url="off"), quiet=True, out=io.StringIO())
    assert 0 < seen["max_request_body_size"] <= gate.MAX_BODY_BYTES


# -- 10. "Refresh now" at most once a minute, across workers -----------------------------------


def shared_stores(factory_settings, factory_store, tmp_path):
    settings = factory_settings.with_values(cache_dir=str(tmp_path / "cache"), history_url="off")
    return [
        EstateStore(settings, loader=lambda s: factory_store.estate, use_cache=True)
        for _ in range(2)
    ]


def test_refresh_now_is_throttled_across_workers(factory_settings, factory_store, tmp_path):
    a, b = shared_stores(factory_settings, factory_store, tmp_path)
    now = time.time()
    accepted, next_at = a.request_refresh(now)
    assert accepted and next_at == pytest.approx(now + 60)
    assert a._wake.is_set()
    assert b.request_refresh(now + 5) == (False, pytest.approx(now + 60))  # another worker
    assert not b._wake.is_set()
    assert a.request_refresh(now + 59)[0] is False
    assert b.next_manual_refresh() == pytest.approx(now + 60)
    assert b.request_refresh(now + 61)[0] is True
    assert mode(tmp_path / "cache" / "manual-refresh.json") == 0o600


def test_forty_clicks_make_one_refresh(factory_settings, factory_store, tmp_path):
    loads = []
    store = EstateStore(
        factory_settings.with_values(history_url="off"),
        loader=lambda s: loads.append(1) or factory_store.estate,
    )
    store.refresh()
    store.start()
    try:
        results = [web_app.refresh_control(store, True, None) for _ in range(40)]
        time.sleep(1.5)
    finally:
        store.stop()
    assert len(loads) == 2  # the first load and one refresh
    note, disabled, title, _pending, _interval = results[-1]
    assert "Refreshed recently: the next manual refresh is possible at" in note
    assert disabled and title.startswith("Next manual refresh possible at")


# -- also mended -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_value, reason",
    [
        ({"startRow": "abc", "endRow": 100}, "startRow must be a whole number"),
        ({"startRow": 0, "endRow": [1]}, "endRow must be a whole number"),
        ({"startRow": 0, "endRow": 100, "sortModel": "severity"}, "sortModel must be a list"),
        ({"startRow": 0, "sortModel": [{"colId": ["x"], "sort": "asc"}]}, "colId and sort"),
        ("everything", "getRowsRequest must be an object"),
    ],
)
def test_malformed_grid_requests_get_400(client, request_value, reason):
    response = client.post("/_dash-update-component", json=rows_request(request_value))
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)


def test_a_malformed_device_query_gets_400(client):
    body = rows_request({"startRow": 0, "endRow": 100}, [["site"]])
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 400


def test_deep_json_gets_400(client):
    for body in ("[" * 100_000 + "]" * 100_000, "[" * 50 + "]" * 50, "{not json"):
        response = client.post(
            "/_dash-update-component", data=body, content_type="application/json"
        )
        assert response.status_code == 400, body[:10]
        assert "Malformed request" in response.get_data(as_text=True)


def test_a_week_beyond_the_calendar_is_a_reason_not_a_crash(client):
    body = router_request("/report", "?week=9999-W52")
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    assert "9999-W52 is not a week of 9999" in response.get_data(as_text=True)
    for week in ("9999-W52", "2026-W99", "<script>"):  # the page itself: refused with a reason
        response = client.get(f"/report?week={week}")
        assert response.status_code == 400, week
        assert response.get_data(as_text=True).startswith("Bad request: ")
    assert client.get("/report?week=2026-W48").status_code == 200


def test_head_login_is_not_a_sign_in(factory_settings, factory_store, users_file):
    app, client = users_client(factory_settings, factory_store, users_file)
    cross = {"Sec-Fetch-Site": "cross-site"}
    for _ in range(10):
        response = client.head(
            "/login", headers=cross, data={"username": "alice", "password": "wrong password"}
        )
        assert response.status_code == 200
    assert sign_in(client).status_code == 302  # nothing was counted against alice
    app.auth.state.close()


@pytest.fixture
def proxy_client(factory_settings, factory_store):
    settings = factory_settings.with_values(
        auth="proxy", proxy_user_header="X-Remote-User", trusted_proxies="127.0.0.1"
    )
    return create_app(settings, factory_store).server.test_client()


def test_proxy_refuses_a_repeated_or_joined_user_header(proxy_client):
    for headers in (
        [("X-Remote-User", "alice"), ("X-Remote-User", "admin")],
        [("X-Remote-User", "alice, admin")],
    ):
        response = proxy_client.get("/_dash-layout", headers=headers)
        assert response.status_code == 400, headers
        assert "more than one user" in response.get_data(as_text=True)


def strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        node = list(node.values())
    return [text for item in node for text in strings(item)] if isinstance(node, list) else []


@pytest.mark.parametrize("name", ["zoë", "Ĳssel", "CONTOSO\\Zoë Łukasz"])
def test_proxy_user_names_keep_their_letters(proxy_client, name):
    as_wsgi = name.encode("utf-8").decode("latin-1")  # how WSGI hands the header over
    layout = proxy_client.get("/_dash-layout", environ_base={"HTTP_X_REMOTE_USER": as_wsgi})
    assert layout.status_code == 200
    assert name in strings(layout.json)


def test_strict_transport_security_with_secure_cookies(factory_settings, factory_store):
    plain = create_app(factory_settings, factory_store).server.test_client()
    assert "Strict-Transport-Security" not in plain.get("/healthz").headers
    secure = create_app(factory_settings.with_values(secure_cookies=True), factory_store)
    response = secure.server.test_client().get("/", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_passwords_are_hashed_at_scrypt_n_2_17_and_old_hashes_upgraded(
    factory_settings, factory_store, users_file
):
    from werkzeug.security import generate_password_hash

    accounts = auth.UserFile(users_file)
    assert accounts.users()["alice"]["hash"].startswith("scrypt:131072:8:1$")
    data = json.loads(users_file.read_text())
    data["users"]["alice"]["hash"] = generate_password_hash(PASSWORD, method="scrypt")
    stamp = data["users"]["alice"]["stamp"]
    users_file.write_text(json.dumps(data))
    assert auth.outdated(data["users"]["alice"]["hash"])
    app, client = users_client(factory_settings, factory_store, users_file)
    assert sign_in(client).status_code == 302
    upgraded = json.loads(users_file.read_text())["users"]["alice"]
    assert upgraded["hash"].startswith("scrypt:131072:8:1$")
    assert upgraded["stamp"] == stamp  # nobody signed out by the upgrade
    assert client.get("/_dash-layout").status_code == 200
    assert mode(users_file) == 0o600
    app.auth.state.close()


def test_the_neutraliser_reads_first_characters_exactly():
    import pyarrow as pa

    values = [*HOSTILE, "ok", "", "é=", "ｘ=", "a=b", " =1", None]
    expected = ["'" + value for value in HOSTILE] + values[len(HOSTILE) :]
    for kind in (pa.string(), pa.large_string()):
        table = pa.table({"text": pa.array(values, kind), "n": range(len(values))})
        assert device_query.neutralise(table).column("text").to_pylist() == expected
        sliced = pa.table({"text": pa.array(values, kind).slice(4)})  # offsets into a buffer
        assert device_query.neutralise(sliced).column("text").to_pylist() == expected[4:]

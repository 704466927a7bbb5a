"""Authentication (issue 7): the accounts file, the `user` command, `serve`'s refusal to
expose an anonymous dashboard, the sign-in flow and the guard over every route (no browser:
the Flask test client; ``test_browser_security.py`` signs in with Chromium)."""

from __future__ import annotations

import getpass
import io
import json
import logging
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboard import cli
from dashboard.settings import SettingsError, load_settings
from dashboard.web import auth
from dashboard.web.app import create_app
from dashboard.web.auth import state as auth_state
from tests.helpers import router_request, run_cli

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
SECRET = "s" * 48
DASH_ROUTES = ("/_dash-layout", "/_dash-dependencies")
CALLBACK = router_request("/")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def users_file(tmp_path) -> Path:
    path = tmp_path / "users.json"
    auth.UserFile(path).add("alice", PASSWORD)
    return path


@pytest.fixture
def users_settings(factory_settings, users_file):
    return factory_settings.with_values(auth="users", users_file=str(users_file), secret_key=SECRET)


@pytest.fixture
def users_app(users_settings, factory_store):
    return create_app(users_settings, factory_store)


@pytest.fixture
def client(users_app):
    return users_app.server.test_client()


def csrf_of(response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)
    return match.group(1)


def sign_in(client, name="alice", password=PASSWORD, next_path=None):
    token = csrf_of(client.get("/login"))
    url = "/login" + (f"?next={next_path}" if next_path else "")
    return client.post(url, data={"csrf": token, "username": name, "password": password})


# -- the accounts file ---------------------------------------------------------------------------


def test_users_file_holds_salted_hashes_readable_by_owner_only(tmp_path):
    path = tmp_path / "sub" / "users.json"
    users = auth.UserFile(path)
    assert users.add("alice", PASSWORD) is True
    users.add("bob", PASSWORD)
    text = path.read_text(encoding="utf-8")
    assert PASSWORD not in text
    data = json.loads(text)["users"]
    assert data["alice"]["hash"].startswith(("scrypt:", "pbkdf2:"))
    assert data["alice"]["hash"] != data["bob"]["hash"]  # salted
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert auth.file_mode_warning(path) is None
        path.chmod(0o644)
        assert "readable by other users" in auth.file_mode_warning(path)
    assert users.verify("alice", PASSWORD) == data["alice"]["stamp"]
    assert users.verify("alice", PASSWORD + "x") is None
    assert users.verify("nobody", PASSWORD) is None


def test_new_password_and_removal_change_the_session_stamp(tmp_path):
    users = auth.UserFile(tmp_path / "users.json")
    users.add("alice", PASSWORD)
    first = users.stamp("alice")
    with pytest.raises(auth.AuthError, match="already exists"):
        users.add("alice", PASSWORD)
    assert users.add("alice", PASSWORD + "!", replace=True) is False
    assert users.stamp("alice") != first
    users.remove("alice")
    assert users.stamp("alice") is None
    with pytest.raises(auth.AuthError, match="no user"):
        users.remove("alice")


@pytest.mark.parametrize("name", ["", "../etc", "a b", "-x", "x" * 65, "a/b", "<b>"])
def test_unsafe_user_names_are_refused(tmp_path, name):
    with pytest.raises(auth.AuthError, match="not allowed"):
        auth.UserFile(tmp_path / "users.json").add(name, PASSWORD)


def test_short_passwords_are_refused(tmp_path):
    with pytest.raises(auth.AuthError, match="too short"):
        auth.UserFile(tmp_path / "users.json").add("alice", "short")


def test_a_broken_users_file_is_a_clear_error(tmp_path):
    path = tmp_path / "users.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(auth.AuthError, match="not valid JSON"):
        auth.UserFile(path).users()
    path.write_text('{"users": {"alice": "plain text"}}', encoding="utf-8")
    with pytest.raises(auth.AuthError, match="not a users file"):
        auth.UserFile(path).users()


def test_users_file_defaults_beside_the_config(factory_settings, tmp_path):
    assert auth.users_path(factory_settings) == factory_settings.config_path.parent / "users.json"
    relative = factory_settings.with_values(users_file="secrets/u.json")
    assert auth.users_path(relative) == factory_settings.config_path.parent / "secrets/u.json"
    absolute = factory_settings.with_values(users_file=str(tmp_path / "u.json"))
    assert auth.users_path(absolute) == tmp_path / "u.json"


# -- the `user` command ------------------------------------------------------------------------


def test_user_command_add_list_remove(factory_config, tmp_path):
    env = {"COMANAGE_USERS_FILE": str(tmp_path / "users.json")}
    done = run_cli(
        *("user", "add", "alice", "--password-stdin", "--config", str(factory_config)),
        stdin=PASSWORD + "\n",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert "added alice" in done.stderr
    again = run_cli(
        *("user", "add", "alice", "--password-stdin", "--config", str(factory_config)),
        stdin=PASSWORD + "\n",
        env=env,
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    listed = run_cli("user", "list", "--config", str(factory_config), env=env)
    assert listed.returncode == 0 and listed.stdout.startswith("alice\t")
    removed = run_cli("user", "remove", "alice", "--config", str(factory_config), env=env)
    assert removed.returncode == 0, removed.stderr
    assert auth.UserFile(tmp_path / "users.json").users() == {}


def test_user_add_without_a_terminal_needs_password_stdin(factory_settings, tmp_path):
    settings = factory_settings.with_values(users_file=str(tmp_path / "u.json"))
    with pytest.raises(auth.AuthError, match="--password-stdin"):
        auth.user_command(settings, "add", "alice", stdin=io.StringIO(""), stderr=io.StringIO())


def test_user_add_prompts_twice_on_a_terminal(factory_settings, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr(getpass, "getpass", lambda prompt, stream=None: next(answers))
    settings = factory_settings.with_values(users_file=str(tmp_path / "u.json"))
    assert auth.user_command(settings, "add", "bob", stdin=Terminal(), stderr=io.StringIO()) == 0
    answers = iter([PASSWORD, PASSWORD + "x"])
    with pytest.raises(auth.AuthError, match="differ"):
        auth.user_command(settings, "add", "carol", stdin=Terminal(), stderr=io.StringIO())


# -- serve refuses an anonymous dashboard beyond loopback --------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_authentication(factory_settings, host):
    assert auth.preflight(factory_settings.with_values(host=host)) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "dashboard.contoso.com"])
def test_non_loopback_without_authentication_is_refused(factory_config, host, capsys):
    code = cli.main(["serve", "--config", str(factory_config), "--host", host, "--port", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "refusing to listen" in err and "--allow-anonymous" in err


def test_allow_anonymous_only_warns(factory_settings):
    notes = auth.preflight(factory_settings.with_values(host="0.0.0.0"), allow_anonymous=True)
    assert any("authentication is off" in note for note in notes)


def test_debug_server_is_loopback_only(factory_config, capsys):
    code = cli.main(
        [
            "serve",
            "--config",
            str(factory_config),
            "--host",
            "0.0.0.0",
            "--allow-anonymous",
            "--debug",
        ]
    )
    assert code == 2 and "loopback" in capsys.readouterr().err


def test_users_mode_needs_an_account(factory_settings, tmp_path):
    settings = factory_settings.with_values(
        auth="users", host="0.0.0.0", users_file=str(tmp_path / "none.json")
    )
    with pytest.raises(auth.AuthError, match="user add"):
        auth.preflight(settings)


def test_users_mode_beyond_loopback_is_served(users_settings):
    notes = auth.preflight(users_settings.with_values(host="0.0.0.0"))
    assert any("secure_cookies" in note for note in notes)


def test_secret_key_rules(factory_settings):
    users = factory_settings.with_values(auth="users")
    assert auth.secret_key(users, environ={}) is None  # one process: a random key is fine
    with pytest.raises(auth.AuthError, match="required"):
        auth.secret_key(users, environ={"COMANAGE_WORKERS": "4"})
    with pytest.raises(auth.AuthError, match="required"):
        auth.secret_key(users.with_values(shared_deployment=True), environ={})
    with pytest.raises(auth.AuthError, match="too short"):
        auth.secret_key(users.with_values(secret_key="short"), environ={})
    assert auth.secret_key(users.with_values(secret_key=SECRET), environ={}) == SECRET


def test_secret_key_and_flags_come_from_the_environment(factory_config):
    settings = load_settings(
        factory_config,
        {
            "COMANAGE_SECRET_KEY": SECRET,
            "COMANAGE_AUTH": "users",
            "COMANAGE_SECURE_COOKIES": "true",
            "COMANAGE_TRUSTED_PROXIES": "10.0.0.1, ::1",
        },
    )
    assert (settings.secret_key, settings.auth, settings.secure_cookies) == (SECRET, "users", True)
    assert settings.trusted_proxies == ("10.0.0.1", "::1")
    with pytest.raises(SettingsError, match="secure_cookies must be boolean"):
        load_settings(factory_config, {"COMANAGE_SECURE_COOKIES": "maybe"})


def test_unknown_mode_and_incomplete_proxy_setup_are_refused(factory_settings):
    with pytest.raises(auth.AuthError, match="auth must be one of"):
        auth.check_settings(factory_settings.with_values(auth="ldap"))
    with pytest.raises(auth.AuthError, match="proxy_user_header"):
        auth.check_settings(factory_settings.with_values(auth="proxy"))
    with pytest.raises(auth.AuthError, match="trusted_proxies"):
        auth.check_settings(
            factory_settings.with_values(auth="proxy", proxy_user_header="X-Remote-User")
        )
    with pytest.raises(auth.AuthError, match="not an IP address"):
        auth.check_settings(
            factory_settings.with_values(
                auth="proxy", proxy_user_header="X-Remote-User", trusted_proxies="proxy.local"
            )
        )


def test_missing_secret_is_a_start_error_for_shared_deployments(
    factory_settings, factory_store, users_file
):
    settings = factory_settings.with_values(
        auth="users", users_file=str(users_file), shared_deployment=True
    )
    with pytest.raises(auth.AuthError, match="secret_key"):
        create_app(settings, factory_store)


def test_random_secret_is_logged_as_a_warning(factory_settings, factory_store, users_file, caplog):
    settings = factory_settings.with_values(auth="users", users_file=str(users_file))
    with caplog.at_level(logging.WARNING):
        app = create_app(settings, factory_store)
    assert "random key" in caplog.text
    assert len(app.server.secret_key) >= 32


# -- the guard ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/devices?site=PS1", "/device/16777005?site=PS1", "/nowhere"]
)
def test_pages_redirect_to_sign_in(client, path):
    response = client.get(path, headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login?next=")
    from urllib.parse import parse_qs, urlsplit

    assert parse_qs(urlsplit(location).query)["next"] == [path]


@pytest.mark.parametrize(
    "path",
    [
        *DASH_ROUTES,
        "/export/devices.csv",
        "/export/intune-only.csv",
        "/assets/02-dashboard.css",
        "/_reload-hash",
        "/_dash-component-suites/dash/dcc/dash_core_components.js",
    ],
)
def test_data_and_static_routes_answer_401(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert b"PC0" not in response.data


def test_callbacks_answer_401(client):
    response = client.post("/_dash-update-component", json=CALLBACK)
    assert response.status_code == 401
    assert b"devices" not in response.data.lower().replace(b"authentication", b"")


def test_open_paths(client):
    assert client.get("/healthz").get_data(as_text=True) == "ok"
    assert client.get("/login").status_code == 200
    assert client.get("/login.css").mimetype == "text/css"
    assert client.get("/logout").status_code == 302  # not signed in: to the sign-in page


def test_sign_in_opens_every_route_and_sign_out_closes_them(client, caplog):
    with caplog.at_level(logging.INFO):
        response = sign_in(client, next_path="%2Fdevices%3Fsite%3DPS1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/devices?site=PS1"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert auth.SESSION_COOKIE in cookie
    for path in ("/", *DASH_ROUTES, "/export/devices.csv", "/assets/02-dashboard.css"):
        assert client.get(path).status_code == 200, path
    assert client.post("/_dash-update-component", json=CALLBACK).status_code == 200
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert "signed-in-user" in layout and "alice" in layout
    assert PASSWORD not in caplog.text
    assert "sign-in: alice" in caplog.text

    token = csrf_of(client.get("/logout"))
    assert client.post("/logout", data={"csrf": "wrong"}).status_code == 400
    response = client.post("/logout", data={"csrf": token})
    assert response.status_code == 302 and "signed_out" in response.headers["Location"]
    assert client.get("/_dash-layout").status_code == 401


def test_a_copied_cookie_is_refused_after_sign_out(users_app):
    client = users_app.server.test_client()
    sign_in(client)
    cookie = client.get_cookie(auth.SESSION_COOKIE).value
    token = csrf_of(client.get("/logout"))
    client.post("/logout", data={"csrf": token})
    thief = users_app.server.test_client()
    thief.set_cookie(auth.SESSION_COOKIE, cookie)
    assert thief.get("/_dash-layout").status_code == 401


def test_secure_cookie_when_configured(users_settings, factory_store):
    app = create_app(users_settings.with_values(secure_cookies=True), factory_store)
    client = app.server.test_client()
    token = csrf_of(client.get("/login", base_url="https://localhost"))
    response = client.post(
        "/login",
        base_url="https://localhost",
        data={"csrf": token, "username": "alice", "password": PASSWORD},
    )
    assert "; Secure" in response.headers["Set-Cookie"]


def test_wrong_password_gets_one_generic_message(client, caplog):
    with caplog.at_level(logging.INFO):
        wrong = sign_in(client, password="not the password")
        unknown = sign_in(client, name="mallory", password=PASSWORD)
        typed_in_name_box = sign_in(client, name="hunter2hunter2", password="x")
    for response in (wrong, unknown, typed_in_name_box):
        assert response.status_code == 401
        assert "Incorrect user name or password." in response.get_data(as_text=True)
    assert client.get("/_dash-layout").status_code == 401
    assert "not the password" not in caplog.text and PASSWORD not in caplog.text
    assert "mallory" not in caplog.text and "hunter2" not in caplog.text
    assert "failed sign-in for user 'alice'" in caplog.text


def test_sign_in_needs_the_form_token(client):
    client.get("/login")
    response = client.post(
        "/login", data={"csrf": "forged", "username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert client.get("/_dash-layout").status_code == 401
    other = client.application.test_client()  # a cross-site page has no session at all
    response = other.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400


def frozen_clock(monkeypatch, at: float = 1_000_000.0) -> None:
    """Stop the clock: the throttle's delays are seconds, a slow test machine must not
    outlast them."""
    monkeypatch.setattr(time, "time", lambda: at)


def test_failed_attempts_are_limited_per_user(client, monkeypatch):
    frozen_clock(monkeypatch)
    for _ in range(auth.PER_USER_AND_ADDRESS.free):
        assert sign_in(client, password="wrong password").status_code == 401
    blocked = sign_in(client)  # even the right password waits now
    assert blocked.status_code == 429
    assert "Too many failed sign-ins. Try again in 5 seconds." in blocked.get_data(as_text=True)
    assert client.get("/_dash-layout").status_code == 401


def test_failure_limiter_window():
    limiter = auth.FailureLimiter(window=60)
    three = [("user:a", auth.Throttle(free=3))]
    for _ in range(3):
        assert limiter.reserve(three, now=100)[0] == 0
    wait, reservation = limiter.reserve(three, now=101)  # the fourth waits 5 s after the last
    assert wait == pytest.approx(4) and reservation is None
    assert limiter.reserve(three, now=161)[0] == 0  # the window has passed
    assert limiter.reserve([("user:b", auth.Throttle(free=3))], now=101)[0] == 0


@pytest.mark.parametrize(
    "value, expected",
    [
        ("/devices?site=PS1", "/devices?site=PS1"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("devices", "/"),
        ("/login", "/"),
        ("/logout", "/"),
    ],
)
def test_next_must_be_a_local_path(value, expected):
    assert auth.safe_next(value) == expected


def test_sign_in_never_redirects_off_site(client):
    response = sign_in(client, next_path="https%3A%2F%2Fevil.example%2F")
    assert response.headers["Location"] == "/"


def test_removing_a_user_ends_their_sessions(client, users_file):
    sign_in(client)
    assert client.get("/_dash-layout").status_code == 200
    auth.UserFile(users_file).remove("alice")
    assert client.get("/_dash-layout").status_code == 401


def test_a_new_password_ends_old_sessions(client, users_file):
    sign_in(client)
    auth.UserFile(users_file).add("alice", PASSWORD + "!", replace=True)
    assert client.get("/_dash-layout").status_code == 401


def test_sessions_expire(client, users_app, monkeypatch):
    sign_in(client)
    later = time.time() + users_app.auth.settings.session_hours * 3600 + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get("/_dash-layout").status_code == 401


def test_a_forged_cookie_is_refused(client):
    client.set_cookie(auth.SESSION_COOKIE, "eyJhdXRoIjp7InVzZXIiOiJhbGljZSJ9fQ.forged.sig")
    assert client.get("/_dash-layout").status_code == 401


# -- several worker processes share the sign-in state -------------------------------------------

NAVIGATE = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}


@pytest.fixture
def two_workers(users_settings, factory_store):
    """Two apps on one config, users file and secret key: two worker processes of one
    deployment (each app has its own memory; only the state file beside users.json joins
    them)."""
    workers = (create_app(users_settings, factory_store), create_app(users_settings, factory_store))
    assert workers[0].auth.state is not workers[1].auth.state
    yield workers
    for app in workers:
        app.auth.state.close()


def refusal(client) -> tuple:
    page = client.get("/devices", headers=NAVIGATE)
    return client.get("/_dash-layout").status_code, page.status_code, page.headers["Location"]


def stored_rows(path: Path, table: str) -> list[tuple]:
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        return connection.execute(f"SELECT * FROM {table} ORDER BY 2").fetchall()
    finally:
        connection.close()


def sign_in_state_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "sign-in state" in r.getMessage()
    ]


def test_the_state_file_sits_beside_the_users_file(users_settings, users_file):
    assert auth.state_path(users_settings) == users_file.with_name("users.json.sign-in.sqlite")


def test_a_sign_out_on_one_worker_is_refused_by_every_worker(two_workers):
    a, b = two_workers
    browser = a.server.test_client()
    sign_in(browser)
    cookie = browser.get_cookie(auth.SESSION_COOKIE).value
    on_a, on_b = a.server.test_client(), b.server.test_client()
    on_a.set_cookie(auth.SESSION_COOKIE, cookie)
    on_b.set_cookie(auth.SESSION_COOKIE, cookie)
    assert on_b.get("/_dash-layout").status_code == 200  # B accepts A's sign-in ...
    browser.post("/logout", data={"csrf": csrf_of(browser.get("/logout"))})
    # ... and, once signed out on A, refuses the same cookie exactly as A does
    assert refusal(on_a) == refusal(on_b) == (401, 302, "/login?next=%2Fdevices")
    assert b.auth.revoked._until == {}  # B knows it from the shared file, not from memory


def test_a_sign_out_on_the_other_worker_too(two_workers):
    a, b = two_workers
    browser = b.server.test_client()
    sign_in(browser)
    cookie = browser.get_cookie(auth.SESSION_COOKIE).value
    browser.post("/logout", data={"csrf": csrf_of(browser.get("/logout"))})
    on_a = a.server.test_client()
    on_a.set_cookie(auth.SESSION_COOKIE, cookie)
    assert refusal(on_a) == (401, 302, "/login?next=%2Fdevices")


@pytest.mark.parametrize("sixth", [0, 1])
def test_failed_sign_ins_on_every_worker_add_up(two_workers, sixth, monkeypatch):
    frozen_clock(monkeypatch)
    clients = [app.server.test_client() for app in two_workers]
    for attempt in range(auth.PER_USER_AND_ADDRESS.free):  # 2 on A, 1 on B
        assert sign_in(clients[attempt % 2], password="wrong password").status_code == 401
    blocked = sign_in(clients[sixth])  # even the right password waits now, on either worker
    assert blocked.status_code == 429
    assert "Too many failed sign-ins. Try again in 5 seconds." in blocked.get_data(as_text=True)
    assert clients[sixth].get("/_dash-layout").status_code == 401
    # another name from the same address is only counted, not blocked
    assert sign_in(clients[1 - sixth], name="bob", password="wrong").status_code == 401


def test_a_shared_limiter_counts_like_one_process(tmp_path):
    path = tmp_path / "state.sqlite"
    one = auth.FailureLimiter(window=60)
    a = auth.FailureLimiter(window=60, state=path)
    b = auth.FailureLimiter(window=60, state=auth.SignInState(path))
    rules = [("addr:x", auth.Throttle(free=3))]
    # Attempts alternate between the two workers; each answer is what one process says.
    for i, now in enumerate([100, 101, 102, 103, 106, 107.5, 110, 117.5, 140, 170]):
        expected = one.reserve(rules, now=now)[0]
        got = (a, b)[i % 2].reserve(rules, now=now)[0]
        assert got == pytest.approx(expected), now
        assert (b, a)[i % 2].reserve(rules, now=now)[0] == pytest.approx(
            expected if expected > 0 else one.reserve(rules, now=now)[0]
        ), now
    assert a.reserve(rules, now=171)[0] > 0
    a.clear("addr:x")  # a sign-in on A clears the count on B too
    assert b.reserve(rules, now=171)[0] == 0


def test_the_state_file_is_private_and_holds_no_names(two_workers, users_settings, caplog):
    a, b = two_workers
    path = auth.state_path(users_settings)
    browser = a.server.test_client()
    assert sign_in(browser, name="hunter2hunter2", password="x").status_code == 401
    assert sign_in(b.server.test_client(), password="wrong password").status_code == 401
    sign_in(browser)
    browser.post("/logout", data={"csrf": csrf_of(browser.get("/logout"))})
    files = [f for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if f.exists()]
    if os.name == "posix":
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    data = b"".join(file.read_bytes() for file in files)
    assert b"hunter2" not in data and b"alice" not in data
    failures, revoked = stored_rows(path, "failures"), stored_rows(path, "revoked")
    assert len(failures) == 3 and len(revoked) == 1  # alice's failure cleared by her sign-in
    assert all(re.fullmatch("[0-9a-f]{64}", row[0]) for row in failures + revoked)
    assert not sign_in_state_warnings(caplog)


def test_an_existing_state_file_is_made_private(tmp_path):
    path = tmp_path / "state.sqlite"
    path.touch(mode=0o644)
    path.chmod(0o644)
    state = auth.SignInState(path)
    assert state.check()
    state.close()
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


# A throttle that never makes anyone wait: every attempt is counted as a failure.
NEVER_WAITS = auth.Throttle(free=10**9)


def fail(limiter, key: str, now: float | None = None) -> None:
    """One failed sign-in for ``key``, as the sign-in counts it (reserved, never forgiven)."""
    assert limiter.reserve([(key, NEVER_WAITS)], now=now)[0] == 0


def blocked(limiter, key: str, limit: int, now: float | None = None) -> bool:
    """Would an attempt for ``key`` wait, with ``limit`` free failures? (An attempt that may
    go ahead is counted, as at a sign-in.)"""
    return limiter.reserve([(key, auth.Throttle(free=limit))], now=now)[0] > 0


def test_expired_and_surplus_rows_are_pruned(tmp_path, monkeypatch):
    path = tmp_path / "state.sqlite"
    limiter = auth.FailureLimiter(window=60, state=path)
    fail(limiter, "user:a", now=100)
    fail(limiter, "user:b", now=150)
    assert len(stored_rows(path, "failures")) == 2
    fail(limiter, "user:c", now=200)  # the failure at 100 is over (window 60): removed
    assert [row[1] for row in stored_rows(path, "failures")] == [150, 200]
    monkeypatch.setattr(limiter, "MAX_PER_KEY", 3)
    monkeypatch.setattr(limiter, "MAX_ROWS", 5)
    for at in range(201, 206):
        fail(limiter, "user:d", now=at)  # at most 3 per key ...
    assert [row[1] for row in stored_rows(path, "failures")] == [150, 200, 203, 204, 205]
    fail(limiter, "user:e", now=206)  # ... and at most 5 in all (the oldest go)
    assert [row[1] for row in stored_rows(path, "failures")] == [200, 203, 204, 205, 206]

    revoked = auth.Revoked(state=path)
    now = time.time()
    revoked.add("gone", now - 1)  # expired (a cookie older than session_hours)
    revoked.add("kept", now + 3600)
    assert [row[1] for row in stored_rows(path, "revoked")] == [now + 3600]
    monkeypatch.setattr(revoked, "MAX_ROWS", 2)
    revoked.add("later", now + 7200)
    revoked.add("soonest", now + 60)  # over the cap: the one expiring first goes
    assert [row[1] for row in stored_rows(path, "revoked")] == [now + 3600, now + 7200]
    assert "kept" in revoked and "later" in auth.Revoked(state=path)
    assert "gone" not in auth.Revoked(state=path)


@pytest.mark.parametrize("obstacle", ["a folder", "not a database"])
def test_an_unusable_state_file_falls_back_to_memory(
    users_settings, factory_store, caplog, monkeypatch, obstacle
):
    path = auth.state_path(users_settings)
    if obstacle == "a folder":
        path.mkdir()  # like a read-only folder: the file cannot be created
    else:
        path.write_bytes(b"this is not a SQLite file at all" * 100)
    monkeypatch.setattr(auth_state, "STATE_RETRY_SECONDS", 0)  # no rest: every use tries again
    frozen_clock(monkeypatch)
    with caplog.at_level(logging.DEBUG, logger="dashboard.web.auth"):
        app = create_app(users_settings, factory_store)  # no crash
        client = app.server.test_client()
        assert sign_in(client).status_code == 302  # nobody is locked out
        assert client.get("/_dash-layout").status_code == 200
        cookie = client.get_cookie(auth.SESSION_COOKIE).value
        client.post("/logout", data={"csrf": csrf_of(client.get("/logout"))})
        thief = app.server.test_client()
        thief.set_cookie(auth.SESSION_COOKIE, cookie)
        assert thief.get("/_dash-layout").status_code == 401  # refused in this process
        for _ in range(auth.PER_USER_AND_ADDRESS.free):  # and this process still limits
            assert sign_in(client, password="wrong password").status_code == 401
        assert sign_in(client).status_code == 429
    warnings = sign_in_state_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert str(path) in warnings[0] and "this process only" in warnings[0]
    assert PASSWORD not in caplog.text and SECRET not in caplog.text
    assert cookie not in caplog.text


def test_a_locked_state_file_falls_back_after_its_timeout(tmp_path, caplog, monkeypatch):
    import sqlite3

    path = tmp_path / "state.sqlite"
    monkeypatch.setattr(auth_state, "STATE_TIMEOUT_SECONDS", 0.1)
    monkeypatch.setattr(auth_state, "STATE_RETRY_SECONDS", 0)
    limiter = auth.FailureLimiter(state=path)
    revoked = auth.Revoked(state=limiter.state)
    fail(limiter, "user:a")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock too long
    try:
        with caplog.at_level(logging.INFO, logger="dashboard.web.auth"):
            fail(limiter, "user:a")
            revoked.add("sid-1", time.time() + 60)
            assert blocked(limiter, "user:a", 2)  # this process's count
            assert "sid-1" in revoked
            assert len(sign_in_state_warnings(caplog)) == 1
            assert "database is locked" in sign_in_state_warnings(caplog)[0]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with caplog.at_level(logging.INFO, logger="dashboard.web.auth"):
        fail(limiter, "user:a")  # works again: the file's two and the one it missed count
        assert "works again" in caplog.text
    assert len(stored_rows(path, "failures")) == 2
    assert blocked(limiter, "user:a", 3)
    assert not blocked(auth.FailureLimiter(state=path), "user:a", 3)  # another process
    assert blocked(auth.FailureLimiter(state=path), "user:a", 2)
    limiter.state.close()


CHILD = """
import sys
from dashboard.web.auth import FailureLimiter, Revoked, SignInState, Throttle
state = SignInState(sys.argv[1], secret=sys.argv[2])
limiter = FailureLimiter(state=state)
for _ in range(int(sys.argv[3])):
    limiter.reserve([("addr:192.0.2.7", Throttle(free=10**9))])
print("sid-1" in Revoked(state), "sid-2" in Revoked(state), state.health.failing)
"""


def test_separate_processes_share_the_state(tmp_path):
    path = tmp_path / "users.json.sign-in.sqlite"
    state = auth.SignInState(path, secret=SECRET)
    auth.Revoked(state).add("sid-1", time.time() + 3600)
    limiter = auth.FailureLimiter(state=state)
    fail(limiter, "addr:192.0.2.7")
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), SECRET, "6"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(3)
    ]  # at once: they wait for locks
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.split() == ["True", "False", "False"], out + err
        assert "sign-in state" not in err
    assert len(stored_rows(path, "failures")) == 1 + 3 * 6
    # the 20th attempt may go ahead (and counts): 20 in four processes
    assert not blocked(limiter, "addr:192.0.2.7", auth.MAX_FAILURES_PER_ADDRESS)
    assert len(stored_rows(path, "failures")) == 20
    wait = limiter.reserve([("addr:192.0.2.7", auth.PER_ADDRESS)])[0]  # the 21st waits
    assert 0 < wait <= auth.PER_ADDRESS.cap
    state.close()


# -- proxy mode ----------------------------------------------------------------------------------


@pytest.fixture
def proxy_app(factory_settings, factory_store):
    settings = factory_settings.with_values(
        auth="proxy", proxy_user_header="X-Remote-User", trusted_proxies="10.0.0.5, 192.168.10.0/24"
    )
    return create_app(settings, factory_store)


def test_proxy_header_is_believed_from_trusted_proxies_only(proxy_app):
    client = proxy_app.server.test_client()
    trusted = {"REMOTE_ADDR": "10.0.0.5"}
    assert (
        client.get(
            "/_dash-layout", environ_base=trusted, headers={"X-Remote-User": "CONTOSO\\alice"}
        ).status_code
        == 200
    )
    layout = client.get(
        "/_dash-layout",
        environ_base={"REMOTE_ADDR": "192.168.10.77"},
        headers={"X-Remote-User": "CONTOSO\\bob"},
    ).get_data(as_text=True)
    assert "CONTOSO\\\\bob" in layout and "sign-out" not in layout
    assert (
        client.post(
            "/_dash-update-component",
            json=CALLBACK,
            environ_base=trusted,
            headers={"X-Remote-User": "alice"},
        ).status_code
        == 200
    )
    # from the proxy, without the header: 401
    assert client.get("/", environ_base=trusted).status_code == 401
    assert (
        client.get(
            "/export/devices.csv", environ_base=trusted, headers={"X-Remote-User": ""}
        ).status_code
        == 401
    )
    # a client reaching the server directly cannot claim a user
    for address in ("127.0.0.1", "10.0.0.6", "192.168.11.1"):
        response = client.get(
            "/",
            environ_base={"REMOTE_ADDR": address},
            headers={"X-Remote-User": "admin", "X-Forwarded-For": "10.0.0.5"},
        )
        assert response.status_code == 403, address
    assert client.get("/healthz", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200


def test_wsgi_entry_applies_the_auth_settings(factory_config, users_file, monkeypatch):
    import dashboard.web.wsgi as wsgi

    monkeypatch.setenv("COMANAGE_CONFIG", str(factory_config))
    monkeypatch.setenv("COMANAGE_AUTH", "users")
    monkeypatch.setenv("COMANAGE_USERS_FILE", str(users_file))
    monkeypatch.setenv("COMANAGE_SECRET_KEY", SECRET)
    monkeypatch.setattr(wsgi, "_app", None)
    try:
        assert wsgi.server.test_client().get("/_dash-layout").status_code == 401
    finally:
        wsgi.app.store.stop()
        monkeypatch.setattr(wsgi, "_app", None)


def test_no_auth_mode_serves_everything(factory_settings, factory_store):
    client = create_app(factory_settings, factory_store).server.test_client()
    assert client.get("/_dash-layout").status_code == 200
    assert "login-form" not in client.get("/login").get_data(as_text=True)  # Dash's page
    assert "signed-in-user" not in client.get("/_dash-layout").get_data(as_text=True)

"""The sign-in page (``/login``, ``/logout``, ``/login.css``): a small server-rendered form, no
script, with a per-session CSRF token, a generic error message and the throttles.
"""

from __future__ import annotations

import logging
import secrets
import time
from urllib.parse import quote

from flask import Response, redirect, render_template_string, request
from flask import session as flask_session

from .accounts import MAX_PASSWORD, NAME_RE, AuthError
from .guard import (
    LOGIN_CSS_PATH,
    LOGIN_PATH,
    LOGOUT_PATH,
    Auth,
    client_address,
    csrf_token,
    safe_next,
    session_user,
    token_ok,
)
from .state import PER_ADDRESS, PER_USER_AND_ADDRESS

log = logging.getLogger(__name__)


LOGIN_CSS = """\
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;
background:#f3f4f6;color:#1f2937}
main{max-width:22rem;margin:12vh auto;background:#fff;border:1px solid #e5e7eb;
border-radius:.5rem;padding:2rem;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h1{font-size:1.25rem;margin:0 0 1.25rem}
label{display:block;font-size:.875rem;margin:.75rem 0 .25rem}
input[type=text],input[type=password]{box-sizing:border-box;width:100%;padding:.5rem;
border:1px solid #cbd5e1;border-radius:.375rem;font-size:1rem}
button{margin-top:1.25rem;width:100%;padding:.55rem;border:0;border-radius:.375rem;
background:#1f2937;color:#fff;font-size:1rem;cursor:pointer}
.message{padding:.5rem .75rem;border-radius:.375rem;font-size:.875rem;margin-bottom:1rem}
.error{background:#fee2e2;color:#991b1b}.info{background:#e0f2fe;color:#075985}
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} - Co-management</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="{{ css }}">
</head><body><main>
<h1>{{ heading }}</h1>
{% if message %}
<div class="message {{ kind }}" role="alert" id="login-message">{{ message }}</div>
{% endif %}
{% if form == "login" %}
<form method="post" action="{{ action }}" id="login-form">
<input type="hidden" name="csrf" value="{{ csrf }}">
<label for="username">User name</label>
<input type="text" id="username" name="username" value="{{ username }}" autocomplete="username"
 maxlength="64" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password"
 maxlength="1024" required>
<button type="submit" id="login-submit">Sign in</button>
</form>
{% elif form == "logout" %}
<form method="post" action="{{ action }}" id="logout-form">
<input type="hidden" name="csrf" value="{{ csrf }}">
<p>Signed in as <strong>{{ user }}</strong>.</p>
<button type="submit" id="logout-submit">Sign out</button>
</form>
{% endif %}
</main></body></html>
"""


def _page(
    heading: str, form: str, status: int = 200, message: str = "", kind: str = "error", **values
) -> Response:
    html = render_template_string(
        PAGE,
        title=heading,
        heading=heading,
        form=form,
        message=message,
        kind=kind,
        css=LOGIN_CSS_PATH,
        **values,
    )
    return Response(html, status=status, mimetype="text/html")


def _login_form(
    next_path: str, status: int = 200, message: str = "", kind: str = "error", username: str = ""
) -> Response:
    action = LOGIN_PATH + (f"?next={quote(next_path, safe='')}" if next_path != "/" else "")
    return _page(
        "Sign in",
        "login",
        status,
        message,
        kind,
        action=action,
        csrf=csrf_token(),
        username=username,
    )


def wait_text(seconds: float) -> str:
    """``40 seconds`` / ``3 minutes``: how long a throttled sign-in waits."""
    if seconds < 120:
        whole = max(1, int(seconds + 0.999))
        return f"{whole} second{'s' if whole > 1 else ''}"
    return f"{int(seconds // 60) + (1 if seconds % 60 else 0)} minutes"


def register_routes(server, auth: Auth) -> None:
    @server.route(LOGIN_CSS_PATH)
    def login_css():
        return Response(LOGIN_CSS, mimetype="text/css")

    if auth.mode != "users":
        return

    @server.route(LOGIN_PATH, methods=["GET", "POST"])
    def login():
        next_path = safe_next(request.args.get("next"))
        if request.method in ("GET", "HEAD"):  # Flask routes HEAD here too: never a sign-in
            if session_user(auth):
                return redirect(next_path, code=302)
            notice = "You have signed out." if request.args.get("signed_out") else ""
            return _login_form(next_path, message=notice, kind="info")
        if not token_ok(request.form.get("csrf")):
            flask_session.pop("csrf", None)
            return _login_form(
                next_path, status=400, message="The sign-in form expired. Please try again."
            )
        name = request.form.get("username", "").strip()[:64]
        password = request.form.get("password", "")
        address = client_address(auth)
        pair = f"user:{name.lower()}|addr:{address}"
        # Counted before the (slow) hash, so concurrent attempts cannot all pass the check.
        wait, reservation = auth.limiter.reserve(
            [(pair, PER_USER_AND_ADDRESS), ("addr:" + address, PER_ADDRESS)]
        )
        if reservation is None:
            return _login_form(
                next_path,
                status=429,
                username=name,
                message=f"Too many failed sign-ins. Try again in {wait_text(wait)}.",
            )
        stamp = None
        if 0 < len(password) <= MAX_PASSWORD and NAME_RE.match(name):
            stamp = auth.users.verify(name, password)
        if stamp is None:  # the reservation stays: it is the failure
            known = NAME_RE.match(name) and auth.users.stamp(name) is not None
            log.warning(
                "failed sign-in %s from %s",
                f"for user {name!r}" if known else "for an unknown user name",
                address,
            )
            return _login_form(
                next_path, status=401, username=name, message="Incorrect user name or password."
            )
        auth.limiter.forgive(reservation, clear=(pair,))
        try:
            if auth.users.upgrade(name, password):
                log.info("upgraded the password hash of %s", name)
        except (AuthError, OSError) as error:  # the sign-in still works with the old hash
            log.warning("could not upgrade the password hash of %s: %s", name, error)
        flask_session.clear()
        flask_session.permanent = True
        flask_session["auth"] = {
            "user": name,
            "stamp": stamp,
            "at": int(time.time()),
            "sid": secrets.token_urlsafe(16),
        }
        flask_session["csrf"] = secrets.token_urlsafe(32)
        log.info("sign-in: %s from %s", name, address)
        return redirect(next_path, code=302)

    @server.route(LOGOUT_PATH, methods=["GET", "POST"])
    def logout():
        user = session_user(auth)
        if request.method in ("GET", "HEAD"):
            if not user:
                return redirect(LOGIN_PATH, code=302)
            return _page("Sign out", "logout", action=LOGOUT_PATH, csrf=csrf_token(), user=user)
        if not token_ok(request.form.get("csrf")):
            return Response(
                "The sign-out form expired: reload the page.\n", status=400, mimetype="text/plain"
            )
        data = flask_session.get("auth")
        if user and isinstance(data, dict):
            auth.revoked.add(str(data.get("sid")), data["at"] + auth.settings.session_hours * 3600)
            log.info("sign-out: %s", user)
        flask_session.clear()
        return redirect(f"{LOGIN_PATH}?signed_out=1", code=302)

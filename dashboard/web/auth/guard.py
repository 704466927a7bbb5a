"""The request guard: one ``before_request`` hook that protects every path but the sign-in
routes and ``/healthz``, and who the signed-in user is (the session cookie, or the trusted
proxy's header).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from dash import dcc, html
from flask import Response, g, has_request_context, redirect, request
from flask import session as flask_session

from ...settings import Settings
from ..security import HEALTH_PATH
from .accounts import AuthError, UserFile
from .state import FailureLimiter, Revoked, SignInState

log = logging.getLogger(__name__)

LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
LOGIN_CSS_PATH = "/login.css"
OPEN_PATHS = frozenset({LOGIN_PATH, LOGOUT_PATH, LOGIN_CSS_PATH, HEALTH_PATH})
SESSION_COOKIE = "comanage_session"
FORWARDED_FOR = "X-Forwarded-For"  # believed from trusted_proxies only


@dataclass
class Auth:
    mode: str
    settings: Settings
    users: UserFile | None = None
    networks: tuple = ()
    limiter: FailureLimiter | None = None
    revoked: Revoked | None = None
    state: SignInState | None = None


def user_nav():
    """The navbar's signed-in user and sign-out button (None when nobody is signed in)."""
    user = current_user()
    if not user:
        return None
    name = html.Span(user, id="signed-in-user", className="navbar-text small text-light me-2")
    if g.get("comanage_auth_mode") != "users":
        return html.Div(name, className="d-flex align-items-center")
    return html.Form(
        [
            name,
            dcc.Input(type="hidden", name="csrf", value=csrf_token()),
            html.Button(
                "Sign out", type="submit", id="sign-out", className="btn btn-sm btn-outline-light"
            ),
        ],
        method="post",
        action=LOGOUT_PATH,
        className="d-flex align-items-center mb-0",
    )


def current_user() -> str | None:
    """The signed-in user of this request (None without auth or outside a request)."""
    if not has_request_context():
        return None
    return g.get("comanage_user")


def csrf_token() -> str:
    """This session's form token (created on first use)."""
    token = flask_session.get("csrf")
    if not token:
        token = flask_session["csrf"] = secrets.token_urlsafe(32)
    return token


def token_ok(sent: str | None) -> bool:
    expected = flask_session.get("csrf")
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(sent, expected)


def safe_next(value: str | None) -> str:
    """A local path to return to after sign-in; anything else becomes ``/``."""
    if not value or not isinstance(value, str) or len(value) > 2000:
        return "/"
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 32 or c == "\\" for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    if parts.path in (LOGIN_PATH, LOGOUT_PATH):
        return "/"
    return value


def _wants_page() -> bool:
    """A browser navigating to a page (redirect to the sign-in) rather than a fetch (401)."""
    if request.method not in ("GET", "HEAD"):
        return False
    path = request.path
    if path.startswith(("/_dash-", "/_reload-hash", "/_favicon", "/assets/", "/export/")):
        return False
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in request.headers.get("Accept", "") or not request.headers.get("Accept")


def _requested_path() -> str:
    query = request.query_string.decode("utf-8", "replace")
    return request.path + (f"?{query}" if query else "")


def _denied(auth: Auth) -> Response:
    if auth.mode == "users" and _wants_page():
        return redirect(
            f"{LOGIN_PATH}?next={quote(safe_next(_requested_path()), safe='')}", code=302
        )
    response = Response("Authentication required.\n", status=401, mimetype="text/plain")
    return response


def session_user(auth: Auth) -> str | None:
    data = flask_session.get("auth")
    if not isinstance(data, dict):
        return None
    name, stamp, at = data.get("user"), data.get("stamp"), data.get("at")
    if not isinstance(name, str) or not isinstance(stamp, str) or not isinstance(at, int | float):
        return None
    if time.time() - at > auth.settings.session_hours * 3600:
        return None
    if data.get("sid") in auth.revoked:
        return None
    try:
        current = auth.users.stamp(name)
    except AuthError as error:  # a broken users file: nobody gets in; the log says why
        log.error("%s", error)
        return None
    if current is None or not hmac.compare_digest(current, stamp):
        return None
    return name


def _address(text: str | None):
    try:
        return ipaddress.ip_address((text or "").strip().split("%", 1)[0])
    except ValueError:
        return None


def _trusted(address, auth: Auth) -> bool:
    return address is not None and any(address in network for network in auth.networks)


def client_address(auth: Auth | None) -> str:
    """The client's address: the TCP peer, or, when the peer is one of ``trusted_proxies``,
    the nearest address in its ``X-Forwarded-For`` that is not a trusted proxy (entries
    further left were written by the client and prove nothing)."""
    peer = request.remote_addr or "?"
    if auth is None or not auth.networks or not _trusted(_address(peer), auth):
        return peer
    hops = [
        hop
        for value in request.headers.getlist(FORWARDED_FOR)
        for hop in value.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage from here on: the proxy's own view is all that is known
        if not _trusted(address, auth):
            return str(address)
    return peer


AMBIGUOUS = "ambiguous"


def _proxy_user(auth: Auth) -> str | bool | None:
    """The proxy's user; False when the peer is not a trusted proxy, ``AMBIGUOUS`` when
    the header was sent twice or names several users."""
    if not _trusted(_address(request.remote_addr), auth):
        return False
    values = request.headers.getlist(auth.settings.proxy_user_header)
    if len(values) > 1 or any("," in value for value in values):
        return AMBIGUOUS  # a server joins repeated headers with commas: never one name
    value = values[0].strip() if values else ""
    try:  # WSGI hands headers over as latin-1: the proxy sent UTF-8 (zoë, Ĳssel)
        value = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass  # not UTF-8: it really was latin-1
    if not value or len(value) > 256 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    return value


def check_request(auth: Auth):
    """The ``before_request`` hook: None lets the request through; else the refusal (the
    sign-in page for a page request, 401 or 403 for anything else)."""
    if request.path in OPEN_PATHS:
        return None
    if auth.mode == "users":
        user = session_user(auth)
    else:
        user = _proxy_user(auth)
        if user is False:
            log.warning("refused a request from %s: not a trusted proxy", request.remote_addr)
            return Response(
                "This dashboard is reached through its reverse proxy only.\n",
                status=403,
                mimetype="text/plain",
            )
        if user == AMBIGUOUS:
            log.warning(
                "refused a request from %s: %s sent more than once or with several names",
                request.remote_addr,
                auth.settings.proxy_user_header,
            )
            return Response(
                "The proxy's user header names more than one user.\n",
                status=400,
                mimetype="text/plain",
            )
    if not user:
        return _denied(auth)
    g.comanage_user = user
    g.comanage_auth_mode = auth.mode
    return None

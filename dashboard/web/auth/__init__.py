"""Who may open the dashboard: nobody is checked, built-in accounts, or a trusted proxy.

Setting ``auth`` (see ``dashboard.settings``):

``none``
    No sign-in. ``serve`` binds loopback by default and refuses any other address unless
    ``--allow-anonymous`` is given (``preflight``); whatever server runs the app, it answers
    only loopback peers unless ``allow_anonymous`` is set (``dashboard.web.gate``).
``users``
    Accounts in a JSON file (``users_file``; salted scrypt hashes from
    ``werkzeug.security``; written with mode 0600), managed with
    ``comanage-dashboard user add|remove|list``. ``/login`` is a small server-rendered form
    (no script) with a per-session CSRF token, a generic error message and a throttle on
    failed attempts per (user name, client address) and per client address: growing delays,
    never a lock another client can impose (``Throttle``); the client address comes from
    ``X-Forwarded-For`` only when the peer is one of ``trusted_proxies``. A successful
    sign-in stores the user in Flask's signed session cookie (HttpOnly, SameSite=Lax, Secure when
    ``secure_cookies``), valid ``session_hours``; removing the user or changing their
    password ends their sessions. ``/logout`` signs out (POST with the token; the navbar's
    "Sign out" button); a copy of the signed-out cookie is refused too. The failed attempts
    and the signed-out sessions are kept in ``<users_file>.sign-in.sqlite`` (``SignInState``,
    mode 0600, on a local disk), so every process of a deployment counts the same failures
    and refuses the same signed-out cookies; when that file cannot be used, each process
    falls back to its own memory and logs one warning.
``proxy``
    A reverse proxy (IIS with Windows authentication, any SSO proxy) authenticates and
    names the user in ``proxy_user_header``. The header is believed only from the
    addresses in ``trusted_proxies`` (the TCP peer, ``request.remote_addr``; forwarded-for
    headers are ignored); any other client is refused (403). A header sent twice or naming
    several users (joined with commas) is refused (400); UTF-8 names survive WSGI's latin-1.

Every path is protected the same way by one ``before_request`` hook: pages, Dash's
callback routes (``/_dash-update-component``, ``/_dash-layout``, ``/_dash-dependencies``),
component bundles, ``/assets/``, ``/export/devices.csv``. Only ``/login``, ``/logout``,
``/login.css`` and ``/healthz`` are open. Without a valid sign-in a page request is
redirected to ``/login?next=<path>`` (``next`` must be a local path), any other request
gets 401. Passwords are never logged, and neither is a user name that matches no account
(it may be a password typed in the wrong box).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from ...settings import Settings
from .accounts import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    USERS_FILE,
    AuthError,
    UserFile,
    check_password,
    check_user_name,
    file_mode_warning,
    outdated,
    users_path,
)
from .command import user_command
from .guard import (
    LOGIN_PATH,
    LOGOUT_PATH,
    SESSION_COOKIE,
    Auth,
    check_request,
    client_address,
    csrf_token,
    current_user,
    safe_next,
    user_nav,
)
from .login import register_routes
from .preflight import (
    check_settings,
    config_mode_warning,
    is_loopback,
    preflight,
    secret_key,
    trusted_networks,
    workers,
)
from .state import (
    FAILURE_WINDOW_SECONDS,
    MAX_FAILURES_PER_ADDRESS,
    PER_ADDRESS,
    PER_USER_AND_ADDRESS,
    FailureLimiter,
    Revoked,
    SignInState,
    Throttle,
    state_path,
)

log = logging.getLogger(__name__)


def install(app, settings: Settings, environ=None) -> Auth | None:
    """Protect every route of ``app.server`` as ``settings.auth`` says (None: no auth)."""
    check_settings(settings)
    mode = settings.auth
    app.auth = None
    if mode == "none":
        return None
    server = app.server
    auth = Auth(mode=mode, settings=settings)
    if mode == "users":
        key = secret_key(settings, environ)
        if key is None:
            key = secrets.token_urlsafe(48)
            log.warning(
                "no secret_key configured: using a random key for this process "
                "(sign-ins end when it stops)"
            )
        auth.users = UserFile(users_path(settings))
        auth.state = SignInState(state_path(settings), secret=key)
        auth.state.check()  # created now (mode 0600): a problem is logged at start
        auth.limiter = FailureLimiter(state=auth.state)
        auth.networks = tuple(trusted_networks(settings))  # TLS proxies: X-Forwarded-For
        auth.revoked = Revoked(state=auth.state)
        server.secret_key = key
        server.config.update(
            SESSION_COOKIE_NAME=SESSION_COOKIE,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_SECURE=bool(settings.secure_cookies),
            PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
            SESSION_REFRESH_EACH_REQUEST=False,
        )
    else:
        auth.networks = tuple(trusted_networks(settings))
    register_routes(server, auth)
    server.before_request(lambda: check_request(auth))
    app.auth = auth
    return auth


__all__ = [
    "FAILURE_WINDOW_SECONDS",
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "MAX_FAILURES_PER_ADDRESS",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "PER_ADDRESS",
    "PER_USER_AND_ADDRESS",
    "SESSION_COOKIE",
    "USERS_FILE",
    "Auth",
    "AuthError",
    "FailureLimiter",
    "Revoked",
    "SignInState",
    "Throttle",
    "UserFile",
    "check_password",
    "check_settings",
    "check_user_name",
    "client_address",
    "config_mode_warning",
    "csrf_token",
    "current_user",
    "file_mode_warning",
    "install",
    "is_loopback",
    "outdated",
    "preflight",
    "safe_next",
    "secret_key",
    "state_path",
    "trusted_networks",
    "user_command",
    "user_nav",
    "users_path",
    "workers",
]

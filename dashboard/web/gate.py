"""What reaches the app at all, checked before any route (and before the sign-in check).

``install(app, settings)`` adds, on ``app.server`` (Flask), in this order:

- a request-body cap (``MAX_BODY_BYTES``): a larger body is refused with 413 before it is
  read, whatever WSGI server runs the app (waitress, gunicorn, Flask's debug server);
- a ``Host`` check: a browser on the operator's machine can be made to send requests to
  ``127.0.0.1`` under an attacker's host name (DNS rebinding); only host names the
  dashboard is meant to be reached by are answered (``allowed_host``), others get 400;
- with ``auth = "none"``, a peer check: a request whose TCP peer (``REMOTE_ADDR``, never a
  forwarded header) is not a loopback address is refused (403) unless ``allow_anonymous``
  is on; so a no-auth configuration served through ``waitress-serve`` or ``gunicorn`` on a
  public address shows nothing;
- JSON bodies (Dash's callbacks) parsed once here: malformed or absurdly nested JSON is a
  400 with a short reason instead of a server error, and so is a callback request that
  names no callback of this app or carries the wrong number of inputs or states (a page
  left open across an upgrade sends its old callbacks; Dash itself would fail with a 500).

``BadInput`` (and a filter with too many values) raised by any route or callback becomes a
400 with its one-line reason. ``/healthz`` answers every host and peer (it says ``ok`` and
nothing else), so load balancers can probe it by address.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re

import numpy as np
from flask import Response, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from ..model.device_query import FilterTooLarge
from ..report import ReportError
from ..report.figures import REPORT_PATH, parse_week
from ..settings import Settings
from .security import HEALTH_PATH

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024  # a callback body is a few kB; a hostile one costs ~0.2 s/MB
MAX_JSON_DEPTH = 32  # Dash's requests nest about 6 deep
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})


class BadInput(ValueError):
    """A request a client built wrong: answered 400 with this one-line reason."""


def _text(status: int, message: str) -> Response:
    return Response(message.rstrip() + "\n", status=status, mimetype="text/plain")


def host_name(value: str) -> str:
    """The host part of a ``Host`` header, lower case, without port or trailing dot."""
    value = (value or "").strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def is_loopback_host(name: str) -> bool:
    """``localhost`` (and its usual aliases), 127.0.0.0/8 or ::1."""
    name = host_name(name) if name.startswith("[") else name
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """``allowed_hosts`` (lower case, without ports) and the address ``serve`` binds when it
    is one specific address (a browser that typed that address cannot be rebinding)."""
    names = {host_name(item) for item in settings.allowed_hosts or ()}
    bind = host_name(str(settings.host or ""))
    if bind not in WILDCARD_BINDS:
        names.add(bind)
    return frozenset(names)


def allowed_host(host: str, settings: Settings, names: frozenset[str] | None = None) -> bool:
    """May a request for ``host`` (the ``Host`` header) be answered?

    Loopback names and addresses always; ``allowed_hosts`` (``*`` allows any) too. With
    authentication and no ``allowed_hosts`` configured, any host (the sign-in protects).
    """
    name = host_name(host)
    if is_loopback_host(name):
        return True
    names = allowed_hosts(settings) if names is None else names
    if "*" in names or name in names:
        return True
    return settings.auth != "none" and not settings.allowed_hosts


def loopback_peer(address: str | None) -> bool:
    try:
        return ipaddress.ip_address((address or "").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: linear, fast


def json_depth(raw: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON text (strings skipped), in C speed:
    checked before parsing, so a deep body never reaches the recursive parser."""
    return _depth(_JSON_STRING.sub(b"", raw))


def json_too_deep(raw: bytes, limit: int) -> bool:
    """Does the JSON text nest deeper than ``limit``? A body with no more opening brackets
    than ``limit`` cannot (that is every callback Dash sends: a count costs microseconds,
    where the exact depth's array work costs ten times more on every request)."""
    text = _JSON_STRING.sub(b"", raw)
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    return _depth(text) > limit


def _depth(text: bytes) -> int:
    array = np.frombuffer(text, dtype=np.uint8)
    if not len(array):
        return 0
    step = np.isin(array, _OPEN).astype(np.int32) - np.isin(array, _CLOSE).astype(np.int32)
    return int(np.cumsum(step).max())


_OPEN = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSE = np.frombuffer(b"]}", dtype=np.uint8)


CALLBACK_PATH = "/_dash-update-component"


def callback_problem(callback_map: dict, body) -> str | None:
    """What is wrong with a callback request's shape for this app, or None."""
    if not isinstance(body, dict):
        return "a callback request is a JSON object."
    declared = callback_map.get(body.get("output")) if isinstance(body.get("output"), str) else None
    if declared is None:
        return "no such callback in this dashboard (reload the page)."
    for part in ("inputs", "state"):
        sent = body.get(part, [])
        if not isinstance(sent, list) or len(sent) != len(declared[part]):
            return f"the callback's {part} do not match this dashboard (reload the page)."
    return None


def install(app, settings: Settings) -> None:
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES  # bodies without Content-Length
    names = allowed_hosts(settings)
    anonymous = settings.auth == "none"
    allow_anonymous = bool(settings.allow_anonymous)

    # The same few Host headers and peers arrive on every request: each is decided once
    # (address parsing is most of the check's cost). Bounded: a client choosing new values
    # only pushes out old ones.
    @functools.lru_cache(maxsize=256)
    def host_ok(host: str) -> bool:
        return allowed_host(host, settings, names)

    peer_ok = functools.lru_cache(maxsize=256)(loopback_peer)

    @server.before_request
    def _gate():
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            return _text(413, f"Request body too large: at most {MAX_BODY_BYTES // 2**20} MB.")
        if request.path == HEALTH_PATH:
            return None
        host = request.host
        if not host_ok(host):
            log.warning(
                "refused a request for host %r from %s (not in allowed_hosts)",
                host[:100],
                request.remote_addr,
            )
            return _text(
                400,
                "Unknown host name: this dashboard answers only the names in "
                "its allowed_hosts setting.",
            )
        if anonymous and not allow_anonymous and not peer_ok(request.remote_addr):
            log.warning(
                "refused a request from %s: auth is 'none' and allow_anonymous is off",
                request.remote_addr,
            )
            return _text(
                403,
                "This dashboard has no sign-in and answers this computer only "
                '(auth = "none"): set up sign-in, or allow_anonymous.',
            )
        if request.path == REPORT_PATH and "week" in request.args:
            try:  # a week that cannot be is the caller's mistake, said before any page
                parse_week(request.args["week"])
            except ReportError as error:
                return _text(400, f"Bad request: {error}")
        if request.method == "POST" and request.mimetype == "application/json":
            if json_too_deep(request.get_data(cache=True), MAX_JSON_DEPTH):
                return _text(400, "Malformed request: JSON nested too deeply.")
            try:
                body = request.get_json()  # cached: Dash reads the same parsed body
            except (BadRequest, RecursionError):
                return _text(400, "Malformed request: the body is not valid JSON.")
            if request.path.endswith(CALLBACK_PATH):
                problem = callback_problem(app.callback_map, body)
                if problem:
                    return _text(400, f"Malformed request: {problem}")
        return None

    @server.errorhandler(RequestEntityTooLarge)
    def _too_large(_error):
        return _text(413, f"Request body too large: at most {MAX_BODY_BYTES // 2**20} MB.")

    @server.errorhandler(BadInput)
    @server.errorhandler(FilterTooLarge)
    def _bad_input(error):
        return _text(400, f"Bad request: {error}")

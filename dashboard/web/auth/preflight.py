"""Checks before serving: the authentication settings, the secret key, the worker count, and
who can read the files that hold secrets. ``serve`` runs them before it listens.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path

from ...settings import Settings
from .accounts import AuthError, UserFile, file_mode_warning, users_path

MODES = ("none", "users", "proxy")
MIN_SECRET = 32
_HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def is_loopback(host: str) -> bool:
    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def trusted_networks(settings: Settings) -> list:
    networks = []
    for item in settings.trusted_proxies or ():
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise AuthError(f"trusted_proxies: {item!r} is not an IP address or network") from None
    return networks


def workers(settings: Settings, environ=None) -> int:
    """Processes serving the dashboard: the ``workers`` setting if there is one, or
    ``COMANAGE_WORKERS``, whichever is larger."""
    environ = os.environ if environ is None else environ
    try:
        return max(
            int(getattr(settings, "workers", 1) or 1),
            int(environ.get("COMANAGE_WORKERS", "1") or 1),
        )
    except ValueError:
        raise AuthError("COMANAGE_WORKERS must be a whole number") from None


def secret_key(settings: Settings, environ=None) -> str | None:
    """The configured key, None when a random per-process key is acceptable; else AuthError."""
    key = str(settings.secret_key or "")
    if key:
        if len(key) < MIN_SECRET:
            raise AuthError(
                f"secret_key is too short: use at least {MIN_SECRET} random "
                'characters (python -c "import secrets; '
                'print(secrets.token_urlsafe(48))")'
            )
        return key
    if settings.shared_deployment or workers(settings, environ) > 1:
        raise AuthError(
            "secret_key (COMANAGE_SECRET_KEY) is required when several processes "
            "serve the dashboard (shared_deployment or COMANAGE_WORKERS > 1)"
        )
    return None


def check_settings(settings: Settings) -> None:
    """The authentication settings are consistent (AuthError names what to fix)."""
    mode = settings.auth
    if mode not in MODES:
        raise AuthError(f"auth must be one of {', '.join(MODES)}, got {mode!r}")
    if settings.session_hours < 1:
        raise AuthError("session_hours must be at least 1")
    if mode == "users":
        secret_key(settings)
        users_path(settings)
    if mode == "proxy":
        header = str(settings.proxy_user_header or "")
        if not _HEADER_RE.match(header):
            raise AuthError(
                'auth = "proxy" needs proxy_user_header (a header name such as X-Remote-User)'
            )
        if not trusted_networks(settings):
            raise AuthError(
                'auth = "proxy" needs trusted_proxies: the address(es) of the '
                "reverse proxy; the user header is believed from nowhere else"
            )


def config_secrets(path: Path | None) -> list[str]:
    """Which secrets a config file holds itself (``secret_key``, a password in a source
    URL), by name; empty when it holds none or cannot be read."""
    if path is None:
        return []
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = ["secret_key"] if raw.get("secret_key") else []
    for index, source in enumerate(raw.get("sources") or []):
        url = source.get("url") if isinstance(source, dict) else None
        if isinstance(url, str) and re.match(r"^[A-Za-z0-9+.-]+://[^/@]*:[^/@]*@", url):
            found.append(f"the password in sources[{index}].url")
    shared = raw.get("shared_cache")
    if isinstance(shared, str) and re.match(r"^rediss?://[^/@]*:[^/@]+@", shared):
        found.append("the password in shared_cache")
    return found


def config_mode_warning(settings: Settings) -> str | None:
    """A warning when other users may read a config file that holds a secret (POSIX)."""
    path = settings.config_path
    if os.name != "posix" or path is None or not Path(path).exists():
        return None
    mode = Path(path).stat().st_mode & 0o777
    if not mode & 0o077:
        return None
    held = config_secrets(path)
    if not held:
        return None
    return (
        f"{path} holds {', '.join(held)} and is readable by other users (mode {mode:o}): "
        f"chmod 600 it, or move the secret to its environment variable"
    )


def preflight(settings: Settings, allow_anonymous: bool = False, bound: bool = True) -> list[str]:
    """Checks ``serve`` runs before listening; returns notes to print, raises AuthError.

    ``bound=False`` (the WSGI entry point): the address is the WSGI server's, not
    ``settings.host``, so the address check is left to the app's peer check."""
    check_settings(settings)
    notes = []
    warning = config_mode_warning(settings)
    if warning:
        notes.append(f"warning: {warning}")
    mode = settings.auth
    if mode == "none" and bound and not is_loopback(settings.host):
        if not allow_anonymous:
            raise AuthError(
                f"refusing to listen on {settings.host or 'every address'} without "
                "authentication: anyone who reaches it would see every device. Set auth = "
                '"users" (accounts: comanage-dashboard user add NAME) or auth = "proxy" '
                "behind IIS/an SSO proxy, or pass --allow-anonymous"
            )
        notes.append(
            "warning: authentication is off (--allow-anonymous): everyone who can "
            "reach this address sees every device"
        )
        if not settings.allowed_hosts:
            notes.append(
                "note: only loopback host names and the bound address are answered: "
                "list the names users type in allowed_hosts"
            )
    if mode == "users":
        users = UserFile(users_path(settings))
        if not users.users():
            raise AuthError(
                f'auth = "users" but {users.path} holds no account: add one '
                "with `comanage-dashboard user add NAME`"
            )
        warning = file_mode_warning(users.path)
        if warning:
            notes.append(f"warning: {warning}")
        if not settings.secret_key:
            notes.append("note: no secret_key set: sign-ins end when this process stops")
        if not settings.secure_cookies and not is_loopback(settings.host):
            notes.append(
                "note: secure_cookies is off: serve users through HTTPS (a TLS "
                "proxy) and turn it on"
            )
    if mode == "proxy" and not is_loopback(settings.host):
        notes.append('note: auth = "proxy": requests from anywhere but trusted_proxies are refused')
    return notes

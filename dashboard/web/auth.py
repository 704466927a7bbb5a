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

import contextlib
import getpass
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import sqlite3
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

from flask import Response, g, has_request_context, redirect, render_template_string, request
from flask import session as flask_session
from werkzeug.security import check_password_hash, generate_password_hash

from ..resting import Resting, reason
from ..settings import Settings, SettingsError
from .security import HEALTH_PATH

log = logging.getLogger(__name__)

MODES = ("none", "users", "proxy")
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
LOGIN_CSS_PATH = "/login.css"
OPEN_PATHS = frozenset({LOGIN_PATH, LOGOUT_PATH, LOGIN_CSS_PATH, HEALTH_PATH})
USERS_FILE = "users.json"
SESSION_COOKIE = "comanage_session"
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MIN_SECRET = 32
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@\\-]{0,63}$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# Failed sign-ins are remembered for this long (the window the throttles count in).
MAX_FAILURES_PER_ADDRESS = 20  # over every user name, before the delays start
FAILURE_WINDOW_SECONDS = 15 * 60
FORWARDED_FOR = "X-Forwarded-For"  # believed from trusted_proxies only
# Password hashing: scrypt at OWASP's recommended cost (N = 2^17, r = 8, p = 1: 128 MiB and
# about half a second each); older hashes are upgraded at the owner's next sign-in. At most
# HASHING_AT_ONCE hashes run at a time, so a burst of sign-ins cannot exhaust memory.
HASH_METHOD = "scrypt:131072:8:1"
HASHING_AT_ONCE = 2
_hashing = threading.BoundedSemaphore(HASHING_AT_ONCE)
# The sign-in state every process shares (failed sign-ins, sign-outs): beside the users file.
STATE_SUFFIX = ".sign-in.sqlite"
STATE_TIMEOUT_SECONDS = 2.0  # the longest a sign-in or sign-out waits for the file's lock
STATE_RETRY_SECONDS = 30  # after a failure the file rests this long (memory only meanwhile)


class AuthError(SettingsError):
    """An authentication set-up a user must fix (exit 2, one line)."""


# -- the accounts file -----------------------------------------------------------------------


def users_path(settings: Settings) -> Path:
    """``users_file``, else ``users.json`` beside the config file (relative: to its folder)."""
    base = settings.work_folder
    configured = str(settings.users_file or "").strip()
    path = Path(configured).expanduser() if configured else Path(USERS_FILE)
    return path if path.is_absolute() else (base / path)


def state_path(settings: Settings) -> Path:
    """The sign-in state file shared by the processes: ``<users_file>.sign-in.sqlite``."""
    users = users_path(settings)
    return users.with_name(users.name + STATE_SUFFIX)


def _hash_method() -> str:
    return HASH_METHOD if hasattr(hashlib, "scrypt") else "pbkdf2:sha256:600000"


def outdated(stored_hash: str) -> bool:
    """A hash made with a weaker method or cost than ``_hash_method()`` (upgrade it)."""
    return not stored_hash.startswith(_hash_method() + "$")


def _hash(password: str) -> str:
    with _hashing:
        return generate_password_hash(password, method=_hash_method())


def _check(stored_hash: str, password: str) -> bool:
    with _hashing:
        return check_password_hash(stored_hash, password)


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise AuthError(
            f"user name {name!r} is not allowed: 1-64 letters, digits and . _ - @ \\,"
            " starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"password too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AuthError(f"password too long: at most {MAX_PASSWORD} characters")
    return password


class UserFile:
    """The accounts file: ``{"users": {name: {"hash", "stamp", "created", "changed"}}}``.

    Reads are cached by modification time, so the web process sees ``user add/remove``
    without a restart. Writes replace the file atomically, readable by its owner only.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int] | None, dict] = (None, {})

    def _signature(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def users(self) -> dict[str, dict]:
        with self._lock:
            signature = self._signature()
            if signature is not None and signature == self._cached[0]:
                return self._cached[1]
            users = self._read() if signature is not None else {}
            self._cached = (signature, users)
            return users

    def _read(self) -> dict[str, dict]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except OSError as error:
            raise AuthError(f"{self.path}: cannot read the users file ({error.strerror})") from None
        except ValueError:
            raise AuthError(f"{self.path}: the users file is not valid JSON") from None
        users = raw.get("users") if isinstance(raw, dict) else None
        if not isinstance(users, dict) or not all(
            isinstance(v, dict)
            and isinstance(v.get("hash"), str)
            and isinstance(v.get("stamp"), str)
            for v in users.values()
        ):
            raise AuthError(f'{self.path}: not a users file (expected {{"users": {{...}}}})')
        return users

    def _write(self, users: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        data = json.dumps({"version": 1, "users": users}, indent=2, sort_keys=True) + "\n"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        try:
            os.chmod(self.path, 0o600)
        except OSError:  # pragma: no cover - not every file system keeps modes
            pass

    def add(self, name: str, password: str, replace: bool = False) -> bool:
        """Create (or with ``replace``, re-password) an account; True when it was new."""
        check_user_name(name)
        check_password(password)
        users = dict(self.users())
        existing = users.get(name)
        if existing is not None and not replace:
            raise AuthError(f"user {name!r} already exists (use --reset to set a new password)")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        users[name] = {
            "hash": _hash(password),
            "stamp": secrets.token_hex(16),  # a new password ends every old session
            "created": (existing or {}).get("created", now),
            "changed": now,
        }
        self._write(users)
        return existing is None

    def remove(self, name: str) -> None:
        users = dict(self.users())
        if name not in users:
            raise AuthError(f"no user {name!r} in {self.path}")
        del users[name]
        self._write(users)

    def stamp(self, name: str) -> str | None:
        entry = self.users().get(name)
        return entry["stamp"] if entry else None

    def verify(self, name: str, password: str) -> str | None:
        """The account's session stamp when the password matches, else None.

        An unknown name costs the same hash computation as a known one.
        """
        entry = self.users().get(name)
        if entry is None:
            _check(_dummy_hash(), password)
            return None
        if _check(entry["hash"], password):
            return entry["stamp"]
        return None

    def upgrade(self, name: str, password: str) -> bool:
        """Re-hash a verified password made with an outdated method (same session stamp,
        so nobody is signed out); True when the file was rewritten."""
        entry = self.users().get(name)
        if entry is None or not outdated(entry["hash"]):
            return False
        new_hash = _hash(password)
        with self._lock:
            self._cached = (None, {})  # re-read: another process may have changed the file
        users = dict(self.users())
        current = users.get(name)
        if current is None or current["hash"] != entry["hash"]:
            return False  # changed meanwhile (a new password, a removal): leave it
        users[name] = {**current, "hash": new_hash}
        self._write(users)
        return True


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(_hash(secrets.token_hex(16)))
    return _DUMMY[0]


def file_mode_warning(path: Path) -> str | None:
    """A warning when others than the owner may read the users file (POSIX only)."""
    if os.name != "posix" or not path.exists():
        return None
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return f"{path} is readable by other users (mode {mode:o}): chmod 600 it"
    return None


# -- the `comanage-dashboard user` command ---------------------------------------------------


def _read_password(password_stdin: bool, stdin, stderr) -> str:
    if password_stdin:
        line = stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
        if not password:
            raise AuthError("no password on standard input")
        return check_password(password)
    if not (hasattr(stdin, "isatty") and stdin.isatty()):
        raise AuthError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password: ", stream=stderr)
    check_password(first)
    if getpass.getpass("Password again: ", stream=stderr) != first:
        raise AuthError("the two passwords differ")
    return first


def user_command(
    settings: Settings,
    action: str,
    name: str | None = None,
    password_stdin: bool = False,
    reset: bool = False,
    stdin=None,
    stdout=None,
    stderr=None,
) -> int:
    """``user add NAME [--password-stdin] [--reset] | remove NAME | list``."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    users = UserFile(users_path(settings))
    if action == "list":
        for user, entry in sorted(users.users().items()):
            print(f"{user}\tchanged {entry.get('changed', '?')}", file=stdout)
        if not users.users():
            print(f"no users in {users.path}", file=stderr)
        return 0
    check_user_name(name or "")
    if action == "add":
        password = _read_password(password_stdin, stdin, stderr)
        created = users.add(name, password, replace=reset)
        print(f"{'added' if created else 'new password for'} {name} in {users.path}", file=stderr)
        if settings.auth != "users":
            print(
                'note: sign-in is not on: set auth = "users" in the config (or '
                "COMANAGE_AUTH=users)",
                file=stderr,
            )
        return 0
    if action == "remove":
        users.remove(name)
        print(f"removed {name} from {users.path} (their sessions end now)", file=stderr)
        return 0
    raise AuthError(f"unknown user action {action!r}")  # pragma: no cover


# -- checks before serving -------------------------------------------------------------------


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
        import tomllib

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


# -- the web side ----------------------------------------------------------------------------


class StateUnavailable(Exception):
    """The shared sign-in state could not be used for this operation (already logged)."""


class SignInState:
    """The sign-in state every process of a deployment shares: a SQLite file beside the users
    file (``state_path``) with the recent failed sign-ins and the signed-out sessions.

    The file is created with mode 0600 and kept in WAL mode (readers never wait for a writer),
    so it must be on a local disk of the machine that runs the processes, never a network
    share. Times are wall-clock (``time.time``): the processes share no monotonic clock. Each
    thread keeps its own connection; writes are short ``BEGIN IMMEDIATE`` transactions that
    wait at most ``STATE_TIMEOUT_SECONDS`` for a lock. When the file cannot be opened, read or
    written, ``run`` logs one warning and raises ``StateUnavailable``; callers then keep their
    in-memory behaviour (this process only) and the file rests for ``STATE_RETRY_SECONDS``.
    Keys (user names, addresses) and session ids are stored as keyed hashes (``digest``).
    """

    VERSION = 1
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS failures (key TEXT NOT NULL, at REAL NOT NULL)",
        "CREATE INDEX IF NOT EXISTS failures_key_at ON failures (key, at)",
        "CREATE INDEX IF NOT EXISTS failures_at ON failures (at)",
        "CREATE TABLE IF NOT EXISTS revoked (sid TEXT PRIMARY KEY, until REAL NOT NULL)",
        "CREATE INDEX IF NOT EXISTS revoked_until ON revoked (until)",
        f"PRAGMA user_version = {VERSION}",
    )

    def __init__(self, path: Path, secret: str | bytes = b""):
        self.path = Path(path)
        self._secret = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        self._local = threading.local()
        self.health = Resting(log)

    # -- the file ----------------------------------------------------------------------------
    def _create(self) -> None:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        if os.name == "posix" and self.path.is_file() and self.path.stat().st_mode & 0o077:
            try:
                os.chmod(self.path, 0o600)  # SQLite gives -wal and -shm the same mode
            except OSError:  # pragma: no cover - not the owner: the file still works
                pass

    def _open(self) -> sqlite3.Connection:
        self._create()
        connection = sqlite3.connect(self.path, timeout=STATE_TIMEOUT_SECONDS, isolation_level=None)
        try:
            if connection.execute("PRAGMA user_version").fetchone()[0] != self.VERSION:
                if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    connection.execute("PRAGMA journal_mode=WAL")
                self._write(connection, lambda c: [c.execute(s) for s in self.SCHEMA])
        except BaseException:
            connection.close()
            raise
        return connection

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "connection", None) is None or local.pid != os.getpid():
            local.connection, local.pid = self._open(), os.getpid()  # never across a fork
        return local.connection

    def close(self) -> None:
        """Closes this thread's connection (the next operation opens a new one)."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None and self._local.pid == os.getpid():
            connection.close()

    @staticmethod
    def _write(connection: sqlite3.Connection, work):
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
            connection.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise
        return result

    # -- the API -----------------------------------------------------------------------------
    def digest(self, value: str) -> str:
        """What the file stores for a key or session id: a keyed hash (HMAC-SHA256 with the
        secret key), so a name typed wrong (perhaps a password) never reaches the disk."""
        return hmac.new(
            self._secret, value.encode("utf-8", "surrogatepass"), hashlib.sha256
        ).hexdigest()

    def run(self, work, write: bool = False):
        """``work(connection)``'s result (in one write transaction with ``write``); raises
        ``StateUnavailable`` when the file cannot be used now."""
        if self.health.resting():
            raise StateUnavailable
        try:
            connection = self._connection()
            result = self._write(connection, work) if write else work(connection)
        except (sqlite3.Error, OSError) as error:
            try:
                self.close()
            except sqlite3.Error:  # pragma: no cover
                pass
            self._failed(error)
            raise StateUnavailable from None
        self.health.worked(f"sign-in state {self.path} works again")
        return result

    def check(self) -> bool:
        """Opens (creates) the file now, so that a problem shows at start; True when usable."""
        try:
            self.run(lambda connection: None)
        except StateUnavailable:
            return False
        return True

    def _failed(self, error: BaseException) -> None:
        why = reason(error)
        self.health.failed(
            STATE_RETRY_SECONDS,
            f"sign-in state {self.path} cannot be used ({why}): failed sign-ins and sign-outs "
            f"count in this process only until it works again (tried again every "
            f"{STATE_RETRY_SECONDS} s)",
            f"sign-in state {self.path} still cannot be used: {why}",
        )


def _state(state: SignInState | str | Path | None) -> SignInState | None:
    if state is None or isinstance(state, SignInState):
        return state
    return SignInState(Path(state))


@dataclass(frozen=True)
class Throttle:
    """Growing delays for one key: ``free`` attempts without waiting in the window, then
    each further attempt waits ``base * 2**k`` seconds (at most ``cap``) after the previous
    one. Nobody is ever locked out for long, and a guesser gets a handful of tries an hour."""

    free: int
    base: float = 5.0
    cap: float = 300.0

    def wait(self, times: list[float], now: float) -> float:
        """Seconds until the next attempt may start, given the attempts in the window."""
        if len(times) < self.free:
            return 0.0
        delay = min(self.cap, self.base * 2 ** min(len(times) - self.free, 30))
        return max(0.0, max(times) + delay - now)


# A user name from one client address: a few tries, then growing delays. An attacker
# elsewhere cannot slow the real user down (their address differs).
PER_USER_AND_ADDRESS = Throttle(free=3)
# One client address over every user name (password spraying).
PER_ADDRESS = Throttle(free=MAX_FAILURES_PER_ADDRESS)


@dataclass
class Reservation:
    """Attempts counted before the password is checked (``FailureLimiter.reserve``)."""

    keys: tuple[str, ...]
    at: float
    rowids: tuple[int, ...] = ()


class FailureLimiter:
    """Counts failed sign-ins per key in a sliding window.

    With a ``state`` (``SignInState`` or its path) the failures are counted in the file every
    process shares. Each process also remembers its own failures, marked when the file took
    them: while the file cannot be read, this process's failures decide (as with one process);
    failures the file could not take are added to the file's count. So a broken file never
    locks anyone out and never lets more attempts through than one process alone allows. Both
    are bounded: ``MAX_KEYS`` keys in memory, ``MAX_PER_KEY`` failures per key and
    ``MAX_ROWS`` failures in the file, and expired failures are removed at each write.
    """

    MAX_KEYS = 10_000
    MAX_PER_KEY = 100
    MAX_ROWS = 100_000

    def __init__(
        self, window: float = FAILURE_WINDOW_SECONDS, state: SignInState | str | Path | None = None
    ):
        self.window = window
        self.state = _state(state)
        self._failures: dict[str, deque] = {}  # key: (time, stored in the file) pairs
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque:
        entries = self._failures.get(key)
        if entries is None:
            return deque()
        while entries and entries[0][0] <= now - self.window:
            entries.popleft()
        if not entries:
            self._failures.pop(key, None)
        return entries

    def blocked_for(self, key: str, limit: int, now: float | None = None) -> float:
        """Seconds until ``key`` may try again (0 when it may now)."""
        now = time.time() if now is None else now
        limit = max(1, limit)
        with self._lock:
            entries = list(self._recent(key, now))
        times = None
        if self.state is not None:
            stored_key = self.state.digest(key)
            with contextlib.suppress(StateUnavailable):
                times = [
                    row[0]
                    for row in self.state.run(
                        lambda c: c.execute(
                            "SELECT at FROM failures WHERE key = ? AND at > ? ORDER BY at DESC "
                            "LIMIT ?",
                            (stored_key, now - self.window, limit),
                        ).fetchall()
                    )
                ]
        if times is None:  # no shared file: this process's failures
            times = [at for at, _ in entries]
        else:  # the shared file's, and this process's that the file did not take
            times += [at for at, stored in entries if not stored]
        if len(times) < limit:
            return 0.0
        times.sort(reverse=True)
        return max(1.0, times[limit - 1] + self.window - now)

    def fail(self, key: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        stored = False
        if self.state is not None:
            stored_key = self.state.digest(key)

            def record(c: sqlite3.Connection) -> None:
                c.execute("DELETE FROM failures WHERE at <= ?", (now - self.window,))
                c.execute("INSERT INTO failures (key, at) VALUES (?, ?)", (stored_key, now))
                c.execute(
                    "DELETE FROM failures WHERE key = ? AND rowid NOT IN (SELECT rowid "
                    "FROM failures WHERE key = ? ORDER BY at DESC LIMIT ?)",
                    (stored_key, stored_key, self.MAX_PER_KEY),
                )
                c.execute(
                    "DELETE FROM failures WHERE rowid IN (SELECT rowid FROM failures "
                    "ORDER BY at DESC LIMIT -1 OFFSET ?)",
                    (self.MAX_ROWS,),
                )

            try:
                self.state.run(record, write=True)
                stored = True
            except StateUnavailable:
                pass
        with self._lock:
            self._remember(key, now, stored)

    def reserve(
        self, rules: list[tuple[str, Throttle]], now: float | None = None
    ) -> tuple[float, Reservation | None]:
        """Count an attempt under every key before the password is checked.

        Returns (0, reservation) when every ``Throttle`` lets it through now, else (seconds
        to wait, None) and nothing is counted. The check and the count are one transaction
        in the shared file (or one lock in memory), so concurrent attempts cannot all pass
        the check first: each sees the ones reserved before it. A failed attempt simply
        keeps its reservation; ``forgive`` takes it back after a success.
        """
        now = time.time() if now is None else now
        keys = tuple(key for key, _ in rules)
        if self.state is not None:
            stored = {key: self.state.digest(key) for key in keys}

            def work(c: sqlite3.Connection):
                with self._lock:
                    extra = {
                        key: [at for at, kept in self._recent(key, now) if not kept] for key in keys
                    }
                wait = 0.0
                for key, throttle in rules:
                    times = [
                        row[0]
                        for row in c.execute(
                            "SELECT at FROM failures WHERE key = ? AND at > ? ORDER BY at DESC "
                            "LIMIT ?",
                            (stored[key], now - self.window, self.MAX_PER_KEY),
                        )
                    ]
                    wait = max(wait, throttle.wait(times + extra[key], now))
                if wait > 0:
                    return wait, ()
                c.execute("DELETE FROM failures WHERE at <= ?", (now - self.window,))
                rowids = []
                for key in keys:
                    rowids.append(
                        c.execute(
                            "INSERT INTO failures (key, at) VALUES (?, ?)", (stored[key], now)
                        ).lastrowid
                    )
                    c.execute(
                        "DELETE FROM failures WHERE key = ? AND rowid NOT IN (SELECT "
                        "rowid FROM failures WHERE key = ? ORDER BY at DESC LIMIT ?)",
                        (stored[key], stored[key], self.MAX_PER_KEY),
                    )
                c.execute(
                    "DELETE FROM failures WHERE rowid IN (SELECT rowid FROM failures "
                    "ORDER BY at DESC LIMIT -1 OFFSET ?)",
                    (self.MAX_ROWS,),
                )
                return 0.0, tuple(rowids)

            try:
                wait, rowids = self.state.run(work, write=True)
            except StateUnavailable:
                pass
            else:
                if wait > 0:
                    return wait, None
                with self._lock:
                    for key in keys:
                        self._remember(key, now, True)
                return 0.0, Reservation(keys, now, rowids)
        with self._lock:  # no usable file: this process decides alone, atomically
            wait = max(
                throttle.wait([at for at, _ in self._recent(key, now)], now)
                for key, throttle in rules
            )
            if wait > 0:
                return wait, None
            for key in keys:
                self._remember(key, now, False)
        return 0.0, Reservation(keys, now)

    def _remember(self, key: str, now: float, stored: bool) -> None:
        if key not in self._failures and len(self._failures) >= self.MAX_KEYS:
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(key, deque(maxlen=self.MAX_PER_KEY)).append((now, stored))

    def forgive(self, reservation: Reservation, clear: tuple[str, ...] = ()) -> None:
        """A reserved attempt succeeded: it does not count; ``clear`` forgets those keys'
        earlier failures too."""
        with self._lock:
            for key in reservation.keys:
                entries = self._failures.get(key)
                if entries is not None:
                    kept = [entry for entry in entries if entry[0] != reservation.at]
                    entries.clear()
                    entries.extend(kept)
        if self.state is not None and reservation.rowids:
            with contextlib.suppress(StateUnavailable):
                self.state.run(
                    lambda c: c.executemany(
                        "DELETE FROM failures WHERE rowid = ?",
                        [(rowid,) for rowid in reservation.rowids],
                    ),
                    write=True,
                )
        for key in clear:
            self.clear(key)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
        if self.state is not None:
            stored_key = self.state.digest(key)
            with contextlib.suppress(StateUnavailable):
                self.state.run(
                    lambda c: c.execute("DELETE FROM failures WHERE key = ?", (stored_key,)),
                    write=True,
                )


class Revoked:
    """Signed-out sessions (a signed cookie cannot be taken back: its id is refused until the
    cookie would have expired anyway).

    With a ``state`` (``SignInState`` or its path) every process of the deployment refuses
    it; this process also remembers its own sign-outs in memory, so they stay refused here
    when the file cannot be used. Expired ids are removed at each write, and the file keeps
    at most ``MAX_ROWS`` ids (those that expire last).
    """

    MAX_ROWS = 100_000

    def __init__(self, state: SignInState | str | Path | None = None):
        self.state = _state(state)
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, sid: str, until: float) -> None:
        now = time.time()
        with self._lock:
            self._until = {k: v for k, v in self._until.items() if v > now}
            self._until[sid] = until
        if self.state is None:
            return
        stored_sid = self.state.digest(sid)

        def record(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM revoked WHERE until <= ?", (now,))
            c.execute(
                "INSERT INTO revoked (sid, until) VALUES (?, ?) ON CONFLICT (sid) DO "
                "UPDATE SET until = max(until, excluded.until)",
                (stored_sid, until),
            )
            c.execute(
                "DELETE FROM revoked WHERE sid IN (SELECT sid FROM revoked ORDER BY "
                "until DESC LIMIT -1 OFFSET ?)",
                (self.MAX_ROWS,),
            )

        with contextlib.suppress(StateUnavailable):
            self.state.run(record, write=True)

    def __contains__(self, sid: str) -> bool:
        if not isinstance(sid, str):
            return False
        now = time.time()
        with self._lock:
            if self._until.get(sid, 0) > now:
                return True
        if self.state is None:
            return False
        stored_sid = self.state.digest(sid)
        try:
            row = self.state.run(
                lambda c: c.execute(
                    "SELECT 1 FROM revoked WHERE sid = ? AND until > ?", (stored_sid, now)
                ).fetchone()
            )
        except StateUnavailable:
            return False
        return row is not None


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
    from dash import dcc, html

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


def _token_ok(sent: str | None) -> bool:
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


def _session_user(auth: Auth) -> str | None:
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


def _guard(auth: Auth):
    if request.path in OPEN_PATHS:
        return None
    if auth.mode == "users":
        user = _session_user(auth)
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


# -- the sign-in page --------------------------------------------------------------------------

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


def _register_routes(server, auth: Auth) -> None:
    @server.route(LOGIN_CSS_PATH)
    def login_css():
        return Response(LOGIN_CSS, mimetype="text/css")

    if auth.mode != "users":
        return

    @server.route(LOGIN_PATH, methods=["GET", "POST"])
    def login():
        next_path = safe_next(request.args.get("next"))
        if request.method in ("GET", "HEAD"):  # Flask routes HEAD here too: never a sign-in
            if _session_user(auth):
                return redirect(next_path, code=302)
            notice = "You have signed out." if request.args.get("signed_out") else ""
            return _login_form(next_path, message=notice, kind="info")
        if not _token_ok(request.form.get("csrf")):
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
        if 0 < len(password) <= MAX_PASSWORD and _NAME_RE.match(name):
            stamp = auth.users.verify(name, password)
        if stamp is None:  # the reservation stays: it is the failure
            known = _NAME_RE.match(name) and auth.users.stamp(name) is not None
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
        user = _session_user(auth)
        if request.method in ("GET", "HEAD"):
            if not user:
                return redirect(LOGIN_PATH, code=302)
            return _page("Sign out", "logout", action=LOGOUT_PATH, csrf=csrf_token(), user=user)
        if not _token_ok(request.form.get("csrf")):
            return Response(
                "The sign-out form expired: reload the page.\n", status=400, mimetype="text/plain"
            )
        data = flask_session.get("auth")
        if user and isinstance(data, dict):
            auth.revoked.add(str(data.get("sid")), data["at"] + auth.settings.session_hours * 3600)
            log.info("sign-out: %s", user)
        flask_session.clear()
        return redirect(f"{LOGIN_PATH}?signed_out=1", code=302)


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
    _register_routes(server, auth)
    server.before_request(lambda: _guard(auth))
    app.auth = auth
    return auth

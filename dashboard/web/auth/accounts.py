"""The accounts of ``auth = "users"``: the users file (JSON, mode 0600) and password hashing.

Salted scrypt hashes from ``werkzeug.security`` at OWASP's recommended cost; older hashes are
upgraded at their owner's next sign-in. A user name that matches no account still costs one
hash (``_dummy_hash``), so timing does not tell which names exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from ...settings import Settings, SettingsError

USERS_FILE = "users.json"
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@\\-]{0,63}$")
# Password hashing: scrypt at OWASP's recommended cost (N = 2^17, r = 8, p = 1: 128 MiB and
# about half a second each); older hashes are upgraded at the owner's next sign-in. At most
# HASHING_AT_ONCE hashes run at a time, so a burst of sign-ins cannot exhaust memory.
HASH_METHOD = "scrypt:131072:8:1"
HASHING_AT_ONCE = 2
_hashing = threading.BoundedSemaphore(HASHING_AT_ONCE)


class AuthError(SettingsError):
    """An authentication set-up a user must fix (exit 2, one line)."""


# -- the accounts file -----------------------------------------------------------------------


def users_path(settings: Settings) -> Path:
    """``users_file``, else ``users.json`` beside the config file (relative: to its folder)."""
    base = settings.work_folder
    configured = str(settings.users_file or "").strip()
    path = Path(configured).expanduser() if configured else Path(USERS_FILE)
    return path if path.is_absolute() else (base / path)


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
    if not isinstance(name, str) or not NAME_RE.match(name):
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

"""The sign-in state every process of a deployment shares: failed sign-ins (the throttles) and
signed-out sessions, kept in ``<users_file>.sign-in.sqlite`` (mode 0600, on a local disk).
When that file cannot be used, each process falls back to its own memory and logs one
warning; the file then rests ``STATE_RETRY_SECONDS`` before it is tried again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ...resting import Resting, reason
from ...settings import Settings
from .accounts import users_path

log = logging.getLogger(__name__)

# Failed sign-ins are remembered for this long (the window the throttles count in).
MAX_FAILURES_PER_ADDRESS = 20  # over every user name, before the delays start
FAILURE_WINDOW_SECONDS = 15 * 60
# The sign-in state every process shares (failed sign-ins, sign-outs): beside the users file.
STATE_SUFFIX = ".sign-in.sqlite"
STATE_TIMEOUT_SECONDS = 2.0  # the longest a sign-in or sign-out waits for the file's lock
STATE_RETRY_SECONDS = 30  # after a failure the file rests this long (memory only meanwhile)


def state_path(settings: Settings) -> Path:
    """The sign-in state file shared by the processes: ``<users_file>.sign-in.sqlite``."""
    users = users_path(settings)
    return users.with_name(users.name + STATE_SUFFIX)


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

"""When the store refreshes: the background thread, back-off after failures, the refresh
status the banner shows, and the deployment-wide throttle of "Refresh now".

The scheduler decides *when*; the store (``service.store``) decides *how*: it obtains a newer
estate (shared cache or sources) and swaps it in.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from ..private import private_folder, write_private
from ..settings import Settings

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 30  # after a failed refresh, retry soon, then back off
CACHE_POLL_SECONDS = 60  # how often a worker looks for a newer estate in the shared cache
# "Refresh now" reloads every source and writes the cache and history: at most once in this
# many seconds per deployment (every worker sharing the cache folder counts).
MANUAL_REFRESH_SECONDS = 60
MANUAL_STAMP = "manual-refresh.json"  # in the cache folder: when the last one was accepted
MANUAL_CLAIM = "manual-refresh.lock"  # held for the instant of deciding


@dataclass(frozen=True)
class RefreshStatus:
    refreshing: bool
    last_success: datetime | None
    last_failure: datetime | None
    error: str | None  # why the last refresh failed (None once a refresh succeeds)
    stale_since: datetime | None  # first failure since the last success
    loaded_at: datetime | None = None  # when the data on screen was read from the sources
    next_refresh: datetime | None = None  # when the next scheduled load is due


class Refreshable(Protocol):
    """What the scheduler drives (``EstateStore``)."""

    def is_loaded(self) -> bool: ...
    def obtain_and_swap(self, force: bool) -> bool: ...
    def adopt_cache(self) -> bool: ...
    def cache_due(self) -> bool: ...


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        target: Refreshable,
        cache_folder: Path | None,
        describe_error: Callable[[BaseException], str],
    ):
        """``cache_folder``: where workers share the "Refresh now" throttle and look for each
        other's loads (None: this process alone); ``describe_error``: the one line the banner
        shows for a failed refresh (no secrets)."""
        self.settings = settings
        self._target = target
        self._cache_folder = cache_folder
        self._describe_error = describe_error
        self.refresh_lock = threading.Lock()
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshing = False
        self.last_success: datetime | None = None
        self.last_failure: datetime | None = None
        self.error: str | None = None
        self.stale_since: datetime | None = None
        self.failures = 0
        self.manual_refresh_seconds: float = MANUAL_REFRESH_SECONDS
        self._manual_at = 0.0  # the last accepted "Refresh now" (without a cache folder)
        self._manual_lock = threading.Lock()

    # -- status --------------------------------------------------------------------------
    def status(self, loaded_at: float | None) -> RefreshStatus:
        loaded = None if loaded_at is None else datetime.fromtimestamp(loaded_at, UTC)
        return RefreshStatus(
            self.refreshing,
            self.last_success,
            self.last_failure,
            self.error,
            self.stale_since,
            loaded,
            self.next_refresh(loaded_at),
        )

    def next_refresh(self, loaded_at: float | None) -> datetime | None:
        """After a failure: the retry; else the loaded data's age reaching the interval."""
        if self.failures and self.last_failure is not None:
            return self.last_failure + timedelta(seconds=self.next_delay())
        if loaded_at is None:
            return None
        return datetime.fromtimestamp(loaded_at + self._interval(), UTC)

    def _interval(self) -> int:
        return max(1, int(self.settings.refresh_minutes)) * 60

    def next_delay(self) -> float:
        if self.failures:
            return float(min(self._interval(), RETRY_FIRST_SECONDS * 2 ** (self.failures - 1)))
        return float(self._interval())

    def succeeded(self) -> None:
        """New data was swapped in (a load or the shared cache)."""
        self.last_success = datetime.now(UTC)
        self.error = None
        self.stale_since = None
        self.failures = 0

    # -- refreshing ----------------------------------------------------------------------
    def refresh(self, force: bool = True) -> bool:
        """Load now (in the caller's thread); True when new data was swapped in.

        ``force`` reads the sources even when the shared cache is fresh ("Refresh now").
        """
        with self.refresh_lock:
            self.refreshing = True
            try:
                # After a failure, retries go to the sources whatever the cache says.
                return self._target.obtain_and_swap(force or self.failures > 0)
            except Exception as error:  # keep serving the last good data, say why
                now = datetime.now(UTC)
                self.error = self._describe_error(error)
                self.last_failure = now
                self.stale_since = self.stale_since or now
                self.failures += 1
                log.warning("refresh failed: %s", self.error)
                return False
            finally:
                self.refreshing = False

    def request_refresh(self, now: float | None = None) -> tuple[bool, float]:
        """Ask the background thread to refresh now (the "Refresh now" button), at most once
        per ``manual_refresh_seconds`` for the whole deployment: (accepted, when the next
        request will be accepted, epoch seconds)."""
        now = time.time() if now is None else now
        with self._manual_lock:  # this process's threads; the claim file: other processes
            last = self._claim_manual(now)
        next_at = last + self.manual_refresh_seconds
        if last != now:
            return False, next_at
        self.wake.set()
        return True, next_at

    def next_manual_refresh(self) -> float:
        """When "Refresh now" will next be accepted (epoch seconds; <= now: at once)."""
        return self._last_manual() + self.manual_refresh_seconds

    def _last_manual(self) -> float:
        if self._cache_folder is None or not (self._cache_folder / MANUAL_STAMP).exists():
            return self._manual_at
        try:
            return float(json.loads((self._cache_folder / MANUAL_STAMP).read_text())["at"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0

    def _claim_here(self, now: float) -> float:
        if now - self._manual_at >= self.manual_refresh_seconds:
            self._manual_at = now
        return self._manual_at

    def _claim_manual(self, now: float) -> float:
        """The last accepted request's time after this one: ``now`` when this one is."""
        if self._cache_folder is None:
            return self._claim_here(now)
        folder = self._cache_folder
        claim = folder / MANUAL_CLAIM
        try:
            private_folder(folder)
            if claim.exists() and time.time() - claim.stat().st_mtime > 30:
                claim.unlink(missing_ok=True)  # left by a process that died deciding
            handle = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return max(self._last_manual(), now - self.manual_refresh_seconds + 1)
        except OSError as error:  # cannot share the decision: decide for this process
            log.warning("cannot use %s: %s", claim, error.strerror)
            return self._claim_here(now)
        try:
            os.close(handle)
            last = self._last_manual()
            if now - last < self.manual_refresh_seconds:
                return last
            temporary = folder / f".{MANUAL_STAMP}.{os.getpid()}.tmp"
            write_private(temporary, json.dumps({"at": now}))
            os.replace(temporary, folder / MANUAL_STAMP)
            return now
        finally:
            claim.unlink(missing_ok=True)

    # -- the thread ----------------------------------------------------------------------
    def start(self) -> None:
        """Run refreshes in a daemon thread: at once if nothing is loaded, then on schedule."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="estate-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()

    def _run(self) -> None:
        target = self._target
        if not target.is_loaded():
            target.adopt_cache()  # a restart or a second worker serves at once ...
        if not target.is_loaded() or (self._cache_folder is not None and target.cache_due()):
            self.refresh(force=False)  # ... and loads from the sources only when due
        while not self._stop.is_set():
            delay = self.next_delay()
            if self._cache_folder is not None:  # look for another worker's newer load
                delay = min(delay, CACHE_POLL_SECONDS)
            forced = self.wake.wait(delay)
            self.wake.clear()
            if not self._stop.is_set():
                self.refresh(force=forced)

    def wait_until_loaded(self, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while not self._target.is_loaded() and time.monotonic() < deadline:
            if self.error and self.last_success is None and not self.refreshing:
                return False
            time.sleep(0.05)
        return self._target.is_loaded()


__all__ = [
    "CACHE_POLL_SECONDS",
    "MANUAL_REFRESH_SECONDS",
    "RETRY_FIRST_SECONDS",
    "RefreshStatus",
    "Refreshable",
    "Scheduler",
]

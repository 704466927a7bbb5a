"""The latest loaded estate, refreshed in the background, read by every page.

Pages never read a source: they ask the store for its current estate. A refresh builds a new
estate beside the old one and swaps a reference, so readers see the old data until the new
is complete; a failed refresh keeps the last good estate and records why (the banner).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .data.estate import Estate, load_estate
from .model.summary import summarize
from .settings import Settings

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 30  # after a failed refresh, retry soon, then back off
SUMMARY_CACHE_SIZE = 64


@dataclass(frozen=True)
class RefreshStatus:
    refreshing: bool
    last_success: datetime | None
    last_failure: datetime | None
    error: str | None  # why the last refresh failed (None once a refresh succeeds)
    stale_since: datetime | None  # first failure since the last success


class EstateStore:
    def __init__(self, settings: Settings,
                 loader: Callable[[Settings], Estate] = load_estate):
        self.settings = settings
        self._loader = loader
        self._estate: Estate | None = None
        self._version = 0
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._summaries: OrderedDict = OrderedDict()
        self._refreshing = False
        self._last_success: datetime | None = None
        self._last_failure: datetime | None = None
        self._error: str | None = None
        self._stale_since: datetime | None = None
        self._failures = 0

    # -- reading -------------------------------------------------------------------------
    @property
    def estate(self) -> Estate | None:
        return self._estate

    @property
    def version(self) -> int:
        return self._version

    def status(self) -> RefreshStatus:
        return RefreshStatus(self._refreshing, self._last_success, self._last_failure,
                             self._error, self._stale_since)

    def summary(self, site: str | None = None, collection: str | None = None) -> dict | None:
        """The summary for a filter, computed once per loaded estate."""
        estate, version = self._estate, self._version
        if estate is None:
            return None
        key = (version, site or None, collection or None)
        with self._lock:
            if key in self._summaries:
                self._summaries.move_to_end(key)
                return self._summaries[key]
        result = summarize(estate.select(site, collection),
                           [s.as_dict() for s in estate.sources], estate.data_as_of)
        with self._lock:
            self._summaries[key] = result
            while len(self._summaries) > SUMMARY_CACHE_SIZE:
                self._summaries.popitem(last=False)
        return result

    # -- refreshing ----------------------------------------------------------------------
    def refresh(self) -> bool:
        """Load now (in the caller's thread); True when new data was swapped in."""
        with self._refresh_lock:
            self._refreshing = True
            try:
                estate = self._loader(self.settings)
            except Exception as error:  # keep serving the last good data, say why
                now = datetime.now(UTC)
                self._error = _one_line(error)
                self._last_failure = now
                self._stale_since = self._stale_since or now
                self._failures += 1
                log.warning("refresh failed: %s", self._error)
                return False
            finally:
                self._refreshing = False
            with self._lock:
                self._estate = estate
                self._version += 1
                self._summaries.clear()
            self._last_success = datetime.now(UTC)
            self._error = None
            self._stale_since = None
            self._failures = 0
            log.info("refreshed: %s devices, data as of %s", len(estate.devices),
                     estate.data_as_of)
            return True

    def request_refresh(self) -> None:
        """Ask the background thread to refresh now (the "Refresh now" button)."""
        self._wake.set()

    def next_delay(self) -> float:
        interval = max(1, self.settings.refresh_minutes) * 60
        if self._failures:
            return min(interval, RETRY_FIRST_SECONDS * 2 ** (self._failures - 1))
        return interval

    def start(self) -> None:
        """Run refreshes in a daemon thread: at once if nothing is loaded, then on schedule."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="estate-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        if self._estate is None:
            self.refresh()
        while not self._stop.is_set():
            self._wake.wait(self.next_delay())
            self._wake.clear()
            if not self._stop.is_set():
                self.refresh()

    def wait_until_loaded(self, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while self._estate is None and time.monotonic() < deadline:
            if self._error and self._last_success is None and not self._refreshing:
                return False
            time.sleep(0.05)
        return self._estate is not None


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:500]

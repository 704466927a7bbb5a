"""The latest loaded estate, refreshed in the background, read by every page.

Pages never read a source: they ask the store for its current estate. A refresh builds a new
estate beside the old one and swaps a reference, so readers see the old data until the new
is complete; a failed refresh keeps the last good estate and records why (the banner).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from .data.estate import Estate, load_estate
from .model.summary import summarize
from .settings import Settings
from .text import one_line

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 30  # after a failed refresh, retry soon, then back off
CACHE_POLL_SECONDS = 60  # how often a worker looks for a newer estate in the shared cache
CACHE_SIZE = 64  # summaries and device-filter masks of the current estate
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


class EstateStore:
    def __init__(
        self,
        settings: Settings,
        loader: Callable[[Settings], Estate] = load_estate,
        use_cache: bool = False,
        history=None,
    ):
        """``use_cache``: share loads through the Parquet cache (``serve`` does; tests that
        count source reads do not). ``history`` (``data.history.HistoryStore``): time in
        state at each load, a snapshot recorded after each load from the sources (a
        read-only store only reads), and the history the pages show."""
        self.settings = settings
        self.history = history
        # The real loader keeps the last good Intune records when an Intune read fails.
        self._passes_intune = loader is load_estate
        if history is not None:
            from .data.history import recording_loader

            loader = recording_loader(loader, history)
        self._loader = loader
        self._cache_folder = None
        self._cache_key = ""
        self._cache_written: float | None = None
        self._shared = None  # data.shared_cache.SharedCache: results every worker shares
        if use_cache:
            from .data.cache import cache_folder, fingerprint
            from .data.shared_cache import open_shared_cache

            self._cache_folder = cache_folder(settings)
            self._cache_key = fingerprint(settings)
            self._shared = open_shared_cache(settings, self._cache_folder)
        self._history_id = (
            ""
            if history is None
            else hashlib.sha256(  # which store
                str(getattr(history, "shown", "")).encode()
            ).hexdigest()[:12]
        )
        self._estate: Estate | None = None
        self._version = 0
        self._generation: str | None = None  # the current estate's cache generation
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache: OrderedDict = OrderedDict()
        self._refreshing = False
        self._last_success: datetime | None = None
        self._last_failure: datetime | None = None
        self._error: str | None = None
        self._stale_since: datetime | None = None
        self._failures = 0
        self._loaded_at: float | None = None
        self.manual_refresh_seconds = MANUAL_REFRESH_SECONDS
        self._manual_at = 0.0  # the last accepted "Refresh now" (without a cache folder)
        self._manual_lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------
    @property
    def estate(self) -> Estate | None:
        return self._estate

    @property
    def version(self) -> int:
        return self._version

    def status(self) -> RefreshStatus:
        loaded = None if self._loaded_at is None else datetime.fromtimestamp(self._loaded_at, UTC)
        return RefreshStatus(
            self._refreshing,
            self._last_success,
            self._last_failure,
            self._error,
            self._stale_since,
            loaded,
            self._next_refresh(),
        )

    def _next_refresh(self) -> datetime | None:
        """After a failure: the retry; else the loaded data's age reaching the interval."""
        if self._failures and self._last_failure is not None:
            return self._last_failure + timedelta(seconds=self.next_delay())
        if self._loaded_at is None:
            return None
        interval = max(1, self.settings.refresh_minutes) * 60
        return datetime.fromtimestamp(self._loaded_at + interval, UTC)

    def summary(self, site: str | None = None, collection: str | None = None) -> dict | None:
        """The summary for a filter, computed once per loaded estate."""
        estate, version = self._current()
        if estate is None:
            return None
        return self._cached(
            version,
            ("summary", site or None, collection or None),
            lambda: summarize(
                estate.devices,
                [s.as_dict() for s in estate.sources],
                estate.data_as_of,
                estate.mask(site, collection),
                intune=estate.intune_figures(),
            ),
            shared=True,
        )

    def _current(self) -> tuple[Estate | None, int]:
        with self._lock:
            return self._estate, self._version

    def _cached(
        self, version: int, key: tuple, compute: Callable[[], object], shared: bool = False
    ):
        """Memoise per loaded estate (its version is part of the key), least recent out.

        ``shared``: a small JSON-able result that is the same in every worker process: on a
        miss here, look in the shared cache (another worker may have computed it for the
        same cache generation) before computing, and store what was computed there.
        Without the Parquet cache (tests, the CLI) or a generation, this process only.
        """
        local_key = (version, *key)
        with self._lock:
            if local_key in self._cache:
                self._cache.move_to_end(local_key)
                return self._cache[local_key]
            generation = self._generation if version == self._version else None
        shared_key = None
        if shared and self._shared is not None and generation is not None:
            shared_key = self._shared_key(generation, key)
        found, value = (False, None) if shared_key is None else self._shared.get(shared_key)
        if not found:
            value = compute()
            if shared_key is not None:
                self._shared.set(shared_key, value)
        with self._lock:
            self._cache[local_key] = value
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return value

    def _shared_key(self, generation: str, key: tuple) -> str:
        """The config's fingerprint and the estate's generation (the same in every process
        that reads that generation, never this process's ``version``), the code and the
        value format, the history store for results read from it, and the request."""
        from .data.shared_cache import FORMAT, code_fingerprint

        source = f"h{self._history_id}" if key[0] == "history" else "e"
        return (
            f"{self._cache_key}:{generation}:{FORMAT}.{code_fingerprint()}:{source}:"
            + json.dumps(list(key), default=str, separators=(",", ":"))
        )

    def device_filter(self, query: dict):
        """Validate a device-list query against the current estate's allowed values."""
        from .model.device_query import parse_filter

        estate = self._estate
        releases = [] if estate is None else estate.devices["os_release"].cat.categories.tolist()
        return parse_filter(
            query,
            [] if estate is None else estate.sites,
            list(self.settings.named_collections),
            releases,
            snapshot_days=[d.isoformat() for d in self.snapshot_days()],
        )

    def matching(self, flt) -> np.ndarray:
        """Rows of the current estate matching a device filter, cached per estate."""
        from .model.device_query import filter_mask

        estate, version = self._current()
        return self._cached(
            version,
            ("mask", *flt.pairs()),
            lambda: filter_mask(
                estate, estate.devices, flt, changes=self._changes_of(estate, version)
            ),
        )

    # -- history (None / empty when there is none or it cannot be read) ------------------
    def _from_history(
        self,
        version: int,
        key: tuple,
        compute: Callable[[], object],
        default=None,
        shared: bool = False,
    ):
        if self.history is None:
            return default
        try:
            return self._cached(version, ("history", *key), compute, shared=shared)
        except Exception as error:
            log.warning("history: %s: %s", key[0], one_line(error, 500))
            return default

    def current_day(self):
        """The current data's snapshot day (its "data as of", UTC), or None."""
        from .data.history import snapshot_day

        estate = self._estate
        return None if estate is None else snapshot_day(estate.data_as_of)

    def snapshot_days(self) -> list:
        """Days with per-device states: what ``changed`` / ``since`` may name."""
        version = self._version
        return self._from_history(
            version, ("days",), lambda: self.history.days(with_devices=True), []
        )

    def week_ago(self, with_devices: bool = False):
        """The newest snapshot day at least 7 days before the current data's day."""
        day, version = self.current_day(), self._version
        if day is None:
            return None
        return self._from_history(
            version,
            ("week-ago", with_devices),
            lambda: self.history.reference_day(day, 7, with_devices=with_devices),
        )

    def past_summary(
        self, day, site: str | None = None, collection: str | None = None
    ) -> dict | None:
        """A stored day's aggregates in the summary's shape (``model.trends``)."""
        from .model.trends import summary_from_metrics

        def compute():
            metrics = self.history.aggregates(day, site or None, collection or None)
            return None if metrics is None else summary_from_metrics(metrics)

        return self._from_history(
            self._version, ("past", day, site or None, collection or None), compute, shared=True
        )

    def trend(self, site: str | None = None, collection: str | None = None):
        """``HistoryStore.trend`` for a scope (every day), or None without history."""
        return self._from_history(
            self._version,
            ("trend", site or None, collection or None),
            lambda: self.history.trend(site or None, collection or None),
            shared=True,
        )

    def changes(self, since) -> dict[str, np.ndarray] | None:
        """Per change kind, the current devices that changed since a snapshot day."""
        estate, version = self._current()
        if estate is None:
            return None
        return self._changes_of(estate, version)(since)

    def _changes_of(self, estate: Estate, version: int):
        def changes(since):
            from datetime import date

            day = date.fromisoformat(since) if isinstance(since, str) else since
            return self._from_history(
                version, ("changes", day), lambda: self.history.changes(estate.devices, day)
            )

        return changes

    def timeline(self, site: str, resource_id: int):
        """One device's stored states (not cached: one indexed query)."""
        if self.history is None:
            return None
        try:
            return self.history.timeline(site, resource_id)
        except Exception as error:
            log.warning("history: timeline: %s", one_line(error, 500))
            return None

    # -- refreshing ----------------------------------------------------------------------
    def _obtain(self, force: bool) -> tuple[Estate, str | None] | None:
        """A newer estate and its cache generation (None when it is not in the cache): from
        the shared cache when another process (or our previous run) loaded one recently
        enough, else from the sources; None when nothing is due."""
        if self._cache_folder is None:
            return self._load(), None
        from .data import cache

        interval = max(1, self.settings.refresh_minutes) * 60
        age = cache.cache_age(self._cache_folder, self._cache_key)
        written = None if age is None else time.time() - age
        if not force and age is not None and age < interval:
            if self._cache_written is not None and written <= self._cache_written + 1:
                return None  # we already serve the newest cached estate
            found = cache.read_generation(self._cache_folder, self._cache_key)
            if found is not None:
                self._cache_written = written
                return found
        deadline = time.monotonic() + max(60, self.settings.query_timeout_seconds * 2)
        while True:
            with cache.refresh_lock(self._cache_folder) as mine:
                if mine:
                    estate = self._load()
                    try:
                        target = cache.write_cache(estate, self._cache_folder, self._cache_key)
                        self._cache_written = time.time()
                    except OSError as error:  # serving matters more than the cache
                        log.warning(
                            "cannot write the cache in %s: %s", self._cache_folder, error.strerror
                        )
                        return estate, None  # no generation: nothing shared about it
                    return estate, target.name
            # Another process is reading the sources: wait for its result, then use it.
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"another process holds the refresh lock in {self._cache_folder}"
                )
            time.sleep(1)
            age = cache.cache_age(self._cache_folder, self._cache_key)
            if age is not None and age < interval:
                found = cache.read_generation(self._cache_folder, self._cache_key)
                if found is not None:
                    self._cache_written = time.time() - age
                    return found

    def _load(self) -> Estate:
        """An estate from the sources; the current estate's Intune records go along, kept
        if the Intune read fails."""
        previous = self._estate.intune if self._estate is not None else None
        if self._passes_intune and previous is not None:
            return self._loader(self.settings, previous_intune=previous)
        return self._loader(self.settings)

    def adopt_cache(self) -> bool:
        """At start: serve the cached estate at once, whatever its age (then refresh)."""
        if self._cache_folder is None or self._estate is not None:
            return False
        from .data import cache

        age = cache.cache_age(self._cache_folder, self._cache_key)
        found = cache.read_generation(self._cache_folder, self._cache_key)
        if found is None:
            return False
        self._cache_written = time.time() - (age or 0)
        self._swap(*found)
        return True

    def _swap(self, estate: Estate, generation: str | None = None) -> None:
        estate.warm()
        # Read from the cache: when that cache was written (its load); else just now.
        loaded = (
            self._cache_written if generation is not None and self._cache_written else time.time()
        )
        with self._lock:
            self._estate = estate
            self._version += 1
            self._generation = generation
            self._loaded_at = loaded
            self._cache.clear()
        self._last_success = datetime.now(UTC)
        self._error = None
        self._stale_since = None
        self._failures = 0
        log.info("refreshed: %s devices, data as of %s", len(estate.devices), estate.data_as_of)

    def cache_due(self) -> bool:
        """True when the shared cache is missing or older than the refresh interval."""
        if self._cache_folder is None:
            return True
        from .data import cache

        age = cache.cache_age(self._cache_folder, self._cache_key)
        return age is None or age >= max(1, self.settings.refresh_minutes) * 60

    def refresh(self, force: bool = True) -> bool:
        """Load now (in the caller's thread); True when new data was swapped in.

        ``force`` reads the sources even when the shared cache is fresh ("Refresh now").
        """
        with self._refresh_lock:
            self._refreshing = True
            try:
                # After a failure, retries go to the sources whatever the cache says.
                found = self._obtain(force or self._failures > 0)
                if found is None:
                    return False
            except Exception as error:  # keep serving the last good data, say why
                now = datetime.now(UTC)
                self._error = _without_secrets(one_line(error, 500), self.settings)
                self._last_failure = now
                self._stale_since = self._stale_since or now
                self._failures += 1
                log.warning("refresh failed: %s", self._error)
                return False
            finally:
                self._refreshing = False
            self._swap(*found)
            return True

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
        self._wake.set()
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
        from .private import private_folder, write_private

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
            self.adopt_cache()  # a restart or a second worker serves at once ...
        if self._estate is None or (self._cache_folder is not None and self.cache_due()):
            self.refresh(force=False)  # ... and loads from the sources only when due
        while not self._stop.is_set():
            delay = self.next_delay()
            if self._cache_folder is not None:  # look for another worker's newer load
                delay = min(delay, CACHE_POLL_SECONDS)
            forced = self._wake.wait(delay)
            self._wake.clear()
            if not self._stop.is_set():
                self.refresh(force=forced)

    def wait_until_loaded(self, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while self._estate is None and time.monotonic() < deadline:
            if self._error and self._last_success is None and not self._refreshing:
                return False
            time.sleep(0.05)
        return self._estate is not None


def _without_secrets(text: str, settings: Settings) -> str:
    """Defence in depth for the banner and the log: whatever raised, hide every source's
    password (in its URL or the variable ``password_env`` names) and any connection-string
    password."""
    import os

    from .data.sql_source import redact

    secrets: list[str | None] = []
    for source in settings.sources:
        if source.url:
            try:
                from sqlalchemy.engine import make_url

                secrets.append(make_url(source.url).password)
            except Exception:  # not a URL: the patterns below still apply
                pass
        if source.odbc:
            from .data.sql_source import odbc_password

            secrets.append(odbc_password(source.odbc))
        if source.password_env:
            secrets.append(os.environ.get(source.password_env))
    return redact(text, secrets)

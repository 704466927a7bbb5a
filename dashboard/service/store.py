"""The latest loaded estate, refreshed in the background, read by every page.

Pages never read a source: they ask the store for its current estate. A refresh builds a new
estate beside the old one and swaps a reference, so readers see the old data until the new
is complete; a failed refresh keeps the last good estate and records why (the banner).

The store holds the estate, starts warm from the shared Parquet cache, and fronts the
history; when to refresh is ``service.scheduler``'s, and the results it remembers per estate
are ``service.results_cache``'s.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from sqlalchemy.engine import make_url

from ..data import cache
from ..data.estate import Estate, load_estate
from ..data.history import HistoryStore, recording_loader, snapshot_day
from ..data.shared_cache import SharedCache, open_shared_cache
from ..data.sql_source import odbc_password, redact
from ..model.device_query import DeviceFilter, filter_mask, parse_filter
from ..model.summary import summarize
from ..model.summary_types import PastSummary, Summary
from ..model.trends import changes as trend_changes
from ..model.trends import summary_from_metrics
from ..settings import Settings
from ..text import one_line
from .results_cache import DRAWN_SIZE, ResultsCache
from .scheduler import RefreshStatus, Scheduler

log = logging.getLogger(__name__)
T = TypeVar("T")
D = TypeVar("D")


class EstateStore:
    def __init__(
        self,
        settings: Settings,
        loader: Callable[..., Estate] = load_estate,  # load_estate's signature
        use_cache: bool = False,
        history: HistoryStore | None = None,
    ) -> None:
        """``use_cache``: share loads through the Parquet cache (``serve`` does; tests that
        count source reads do not). ``history`` (``data.history.HistoryStore``): time in
        state at each load, a snapshot recorded after each load from the sources (a
        read-only store only reads), and the history the pages show."""
        self.settings = settings
        self.history = history
        # The real loader keeps the last good Intune records when an Intune read fails.
        self._passes_intune = loader is load_estate
        if history is not None:
            loader = recording_loader(loader, history)
        self._loader = loader
        self._cache_folder: Path | None = None
        self._cache_key = ""
        self._cache_written: float | None = None
        shared = None  # data.shared_cache.SharedCache: results every worker shares
        if use_cache:
            self._cache_folder = cache.cache_folder(settings)
            self._cache_key = cache.fingerprint(settings)
            shared = open_shared_cache(settings, self._cache_folder)
        history_id = (
            ""
            if history is None
            else hashlib.sha256(  # which store
                str(getattr(history, "shown", "")).encode()
            ).hexdigest()[:12]
        )
        self._cache = ResultsCache(shared, self._cache_key, history_id)
        # Pages' parts drawn per scope (``memo``): apart, so that the device-filter masks
        # (an estate's length each) and the pages do not push each other out.
        self._drawn = ResultsCache(size=DRAWN_SIZE)
        self._estate: Estate | None = None
        self._version = 0
        self._generation: str | None = None  # the current estate's cache generation
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self.scheduler = Scheduler(
            settings,
            self,
            self._cache_folder,
            lambda error: _without_secrets(one_line(error, 500), settings),
        )
        self._wake = self.scheduler.wake  # "Refresh now" sets it (tests look)

    # -- reading -------------------------------------------------------------------------
    @property
    def estate(self) -> Estate | None:
        return self._estate

    @property
    def version(self) -> int:
        return self._version

    @property
    def _shared(self) -> SharedCache | None:
        return self._cache.shared

    def is_loaded(self) -> bool:
        return self._estate is not None

    def status(self) -> RefreshStatus:
        return self.scheduler.status(self._loaded_at)

    def summary(self, site: str | None = None, collection: str | None = None) -> Summary | None:
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

    def memo(self, key: tuple, compute: Callable[[], T]) -> T:
        """A result drawn from the current estate alone (the same for every user who asks),
        computed once per loaded estate in this process; before any data, computed each time."""
        estate, version = self._current()
        if estate is None:
            return compute()
        return self._drawn.get(version, key, compute)

    def _current(self) -> tuple[Estate | None, int]:
        with self._lock:
            return self._estate, self._version

    def _cached(
        self, version: int, key: tuple, compute: Callable[[], T], shared: bool = False
    ) -> T:
        """Memoise per loaded estate (``ResultsCache``); ``shared`` results go through the
        shared cache under the current estate's cache generation."""
        with self._lock:
            generation = self._generation if version == self._version else None
        return self._cache.get(version, key, compute, generation, shared=shared)

    def device_filter(self, query: dict) -> DeviceFilter:
        """Validate a device-list query against the current estate's allowed values."""
        estate = self._estate
        releases = [] if estate is None else estate.devices["os_release"].cat.categories.tolist()
        return parse_filter(
            query,
            [] if estate is None else estate.sites,
            list(self.settings.named_collections),
            releases,
            snapshot_days=[d.isoformat() for d in self.snapshot_days()],
            intune=estate is not None and "intune_state" in estate.devices.columns,
        )

    def matching(self, flt: DeviceFilter) -> np.ndarray:
        """Rows of the current estate matching a device filter, cached per estate."""
        estate, version = self._current()
        if estate is None:
            return np.zeros(0, dtype=bool)
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
        compute: Callable[[], T],
        default: D,
        shared: bool = False,
    ) -> T | D:
        if self.history is None:
            return default
        try:
            return self._cached(version, ("history", *key), compute, shared=shared)
        except Exception as error:
            log.warning("history: %s: %s", key[0], one_line(error, 500))
            return default

    def current_day(self) -> date | None:
        """The current data's snapshot day (its "data as of", UTC), or None."""
        estate = self._estate
        return None if estate is None else snapshot_day(estate.data_as_of)

    def snapshot_days(self) -> list[date]:
        """Days with per-device states: what ``changed`` / ``since`` may name."""
        history = self.history
        if history is None:
            return []
        return self._from_history(
            self._version, ("days",), lambda: history.days(with_devices=True), []
        )

    def week_ago(self, with_devices: bool = False) -> date | None:
        """The newest snapshot day at least 7 days before the current data's day."""
        day, version, history = self.current_day(), self._version, self.history
        if day is None or history is None:
            return None
        return self._from_history(
            version,
            ("week-ago", with_devices),
            lambda: history.reference_day(day, 7, with_devices=with_devices),
            None,
        )

    def past_summary(
        self, day: date, site: str | None = None, collection: str | None = None
    ) -> PastSummary | None:
        """A stored day's aggregates in the summary's shape (``model.trends``)."""
        history = self.history
        if history is None:
            return None

        def compute() -> PastSummary | None:
            metrics = history.aggregates(day, site or None, collection or None)
            return None if metrics is None else summary_from_metrics(metrics)

        return self._from_history(
            self._version,
            ("past", day, site or None, collection or None),
            compute,
            None,
            shared=True,
        )

    def trend(self, site: str | None = None, collection: str | None = None) -> pd.DataFrame | None:
        """``HistoryStore.trend`` for a scope (every day), or None without history."""
        history = self.history
        if history is None:
            return None
        return self._from_history(
            self._version,
            ("trend", site or None, collection or None),
            lambda: history.trend(site or None, collection or None),
            None,
            shared=True,
        )

    def changes(self, since: date | str) -> dict[str, np.ndarray] | None:
        """Per change kind, the current devices that changed since a snapshot day."""
        estate, version = self._current()
        if estate is None:
            return None
        return self._changes_of(estate, version)(since)

    def _changes_of(
        self, estate: Estate, version: int
    ) -> Callable[[date | str], dict[str, np.ndarray] | None]:
        def changes(since: date | str) -> dict[str, np.ndarray] | None:
            day = date.fromisoformat(since) if isinstance(since, str) else since
            history = self.history
            if history is None:
                return None
            return self._from_history(
                version,
                ("changes", day),
                lambda: trend_changes(estate.devices, history.states_on(day)),
                None,
            )

        return changes

    def timeline(self, site: str, resource_id: int) -> pd.DataFrame | None:
        """One device's stored states (not cached: one indexed query)."""
        if self.history is None:
            return None
        try:
            return self.history.timeline(site, resource_id)
        except Exception as error:
            log.warning("history: timeline: %s", one_line(error, 500))
            return None

    # -- loading and warm start ----------------------------------------------------------
    def _obtain(self, force: bool) -> tuple[Estate, str | None] | None:
        """A newer estate and its cache generation (None when it is not in the cache): from
        the shared cache when another process (or our previous run) loaded one recently
        enough, else from the sources; None when nothing is due."""
        folder = self._cache_folder
        if folder is None:
            return self._load(), None
        interval = max(1, self.settings.refresh_minutes) * 60
        age = cache.cache_age(folder, self._cache_key)
        written = None if age is None else time.time() - age
        if not force and age is not None and age < interval:
            if (
                self._cache_written is not None
                and written is not None
                and written <= self._cache_written + 1
            ):
                return None  # we already serve the newest cached estate
            found = cache.read_generation(folder, self._cache_key)
            if found is not None:
                self._cache_written = written
                return found
        deadline = time.monotonic() + max(60, self.settings.query_timeout_seconds * 2)
        while True:
            with cache.refresh_lock(folder) as mine:
                if mine:
                    estate = self._load()
                    try:
                        target = cache.write_cache(estate, folder, self._cache_key)
                        self._cache_written = time.time()
                    except OSError as error:  # serving matters more than the cache
                        log.warning("cannot write the cache in %s: %s", folder, error.strerror)
                        return estate, None  # no generation: nothing shared about it
                    return estate, target.name
            # Another process is reading the sources: wait for its result, then use it.
            if time.monotonic() > deadline:
                raise TimeoutError(f"another process holds the refresh lock in {folder}")
            time.sleep(1)
            age = cache.cache_age(folder, self._cache_key)
            if age is not None and age < interval:
                found = cache.read_generation(folder, self._cache_key)
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

    def obtain_and_swap(self, force: bool) -> bool:
        """One refresh (the scheduler's): True when newer data was swapped in."""
        found = self._obtain(force)
        if found is None:
            return False
        self._swap(*found)
        return True

    def adopt_cache(self) -> bool:
        """At start: serve the cached estate at once, whatever its age (then refresh)."""
        folder = self._cache_folder
        if folder is None or self._estate is not None:
            return False
        age = cache.cache_age(folder, self._cache_key)
        found = cache.read_generation(folder, self._cache_key)
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
            self._drawn.clear()
        self.scheduler.succeeded()
        log.info("refreshed: %s devices, data as of %s", len(estate.devices), estate.data_as_of)

    def cache_due(self) -> bool:
        """True when the shared cache is missing or older than the refresh interval."""
        folder = self._cache_folder
        if folder is None:
            return True
        age = cache.cache_age(folder, self._cache_key)
        return age is None or age >= max(1, self.settings.refresh_minutes) * 60

    # -- the schedule (``service.scheduler``) --------------------------------------------
    def refresh(self, force: bool = True) -> bool:
        """Load now (in the caller's thread); True when new data was swapped in.

        ``force`` reads the sources even when the shared cache is fresh ("Refresh now").
        """
        return self.scheduler.refresh(force)

    def request_refresh(self, now: float | None = None) -> tuple[bool, float]:
        """ "Refresh now", throttled for the whole deployment (``Scheduler``)."""
        return self.scheduler.request_refresh(now)

    def next_manual_refresh(self) -> float:
        return self.scheduler.next_manual_refresh()

    @property
    def manual_refresh_seconds(self) -> float:
        return self.scheduler.manual_refresh_seconds

    @manual_refresh_seconds.setter
    def manual_refresh_seconds(self, seconds: float) -> None:
        self.scheduler.manual_refresh_seconds = seconds

    def next_delay(self) -> float:
        return self.scheduler.next_delay()

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()

    def wait_until_loaded(self, timeout: float = 120) -> bool:
        return self.scheduler.wait_until_loaded(timeout)


def _without_secrets(text: str, settings: Settings) -> str:
    """Defence in depth for the banner and the log: whatever raised, hide every source's
    password (in its URL or the variable ``password_env`` names) and any connection-string
    password."""
    secrets: list[str | None] = []
    for source in settings.sources:
        if source.url:
            try:
                secrets.append(make_url(source.url).password)
            except Exception:  # not a URL: the patterns below still apply
                pass
        if source.odbc:
            secrets.append(odbc_password(source.odbc))
        if source.password_env:
            secrets.append(os.environ.get(source.password_env))
    return redact(text, secrets)


__all__ = ["EstateStore", "RefreshStatus"]

"""Results computed from the current estate, remembered per loaded estate.

This process keeps the most recent ``CACHE_SIZE`` results (least recent out); small
JSON-able results that are the same in every worker are also shared through the shared cache
(``data.shared_cache``), so that one worker's computation serves the others.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

from ..data import shared_cache
from ..data.shared_cache import SharedCache

CACHE_SIZE = 64  # summaries and device-filter masks of the current estate
DRAWN_SIZE = 128  # parts of pages drawn per scope (a few per site x collection viewed)

T = TypeVar("T")


class ResultsCache:
    def __init__(
        self,
        shared: SharedCache | None = None,
        config_key: str = "",
        history_id: str = "",
        size: int = CACHE_SIZE,
    ):
        """``shared``: the cache every worker shares (None: this process only);
        ``config_key``: the configuration's fingerprint; ``history_id``: which history store
        the results read from history come from; ``size``: results kept (least recent out)."""
        self.shared = shared
        self.size = size
        self._config_key = config_key
        self._history_id = history_id
        self._lock = threading.Lock()
        self._values: OrderedDict[tuple[Hashable, ...], Any] = OrderedDict()

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def get(
        self,
        version: int,
        key: tuple[Hashable, ...],
        compute: Callable[[], T],
        generation: str | None = None,
        shared: bool = False,
    ) -> T:
        """Memoise per loaded estate (its version is part of the key), least recent out.

        ``shared``: a small JSON-able result that is the same in every worker process: on a
        miss here, look in the shared cache (another worker may have computed it for the
        same cache ``generation``) before computing, and store what was computed there.
        Without a shared cache or a generation, this process only.
        """
        local_key = (version, *key)
        with self._lock:
            if local_key in self._values:
                self._values.move_to_end(local_key)
                return cast(T, self._values[local_key])
        shared_key = None
        if shared and self.shared is not None and generation is not None:
            shared_key = self._shared_key(generation, key)
        found, value = (False, None)
        if shared_key is not None and self.shared is not None:
            found, value = self.shared.get(shared_key)
        if not found:
            value = compute()
            if shared_key is not None and self.shared is not None:
                self.shared.set(shared_key, value)
        with self._lock:
            self._values[local_key] = value
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return cast(T, value)

    def _shared_key(self, generation: str, key: tuple[Hashable, ...]) -> str:
        """The config's fingerprint and the estate's generation (the same in every process
        that reads that generation, never this process's ``version``), the code and the
        value format, the history store for results read from it, and the request."""
        source = f"h{self._history_id}" if key[0] == "history" else "e"
        return (
            # (looked up at each call: the code's fingerprint is computed once, then kept)
            f"{self._config_key}:{generation}:{shared_cache.FORMAT}."
            f"{shared_cache.code_fingerprint()}:{source}:"
            + json.dumps(list(key), default=str, separators=(",", ":"))
        )


__all__ = ["CACHE_SIZE", "DRAWN_SIZE", "ResultsCache"]

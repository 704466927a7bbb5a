"""The results cache shared by the worker processes of one deployment (Flask-Caching).

Several processes serving the same dashboard (gunicorn workers, several waitress processes
behind a reverse proxy) read the same estate from the warm-start cache; the summaries and
trends they compute from it are the same in every process, so one process computes each and
the others read it from here. The backend is one of Flask-Caching's: by default a
``FileSystemCache`` in the ``flask-cache`` folder of the warm-start cache (mode 0700), or a
``RedisCache`` when ``shared_cache`` is a ``redis://`` / ``rediss://`` URL.

Callers give keys that name the estate's cache generation, so an entry is never served for
another estate; entries also expire (a few refresh intervals). Values are stored as JSON
(never pickle: a value read back from a shared Redis cannot run code) and only when they
survive the round trip exactly. A broken backend (Redis down, disk full) never breaks a
page: the value is computed, one warning is logged, and the backend is tried again after
``RETRY_SECONDS``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from datetime import date
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd
from cachelib.serializers import BaseSerializer
from flask_caching.backends import FileSystemCache, RedisCache

from ..resting import Resting, reason
from .sql_source import redact

log = logging.getLogger(__name__)

FOLDER = "flask-cache"  # inside the warm-start cache folder
OFF = ("off",)
REDIS_SCHEMES = ("redis://", "rediss://")
KEY_PREFIX = "comanage-dashboard:"
RETRY_SECONDS = 60  # after a failure the backend rests this long (computing meanwhile)
MAX_BYTES = 1 << 20  # larger values (years of daily trends) stay in each process
THRESHOLD = 2000  # files in the folder before Flask-Caching prunes expired and old ones
REDIS_TIMEOUT_SECONDS = 1.0  # connect and read: a missing Redis must not stall a page
FORMAT = "1"  # part of every key: a change of the encoding never reads old entries


@functools.cache
def code_fingerprint() -> str:
    """This process's dashboard code (every module of the package): part of every key, so
    that results computed by other code (an upgrade, a worker not restarted yet) are never
    read, whatever the version number says."""
    root = Path(str(resources.files("dashboard")))
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def is_redis(spec: str) -> bool:
    return spec.strip().lower().startswith(REDIS_SCHEMES)


def is_off(spec: str) -> bool:
    return spec.strip().lower() in OFF


def shown(spec: str) -> str:
    """The setting as it may be logged: a Redis URL without its password."""
    return redact(spec.strip(), _secrets(spec)) if is_redis(spec) else spec


def _secrets(spec: str) -> list[str]:
    """The passwords in a Redis URL: before the host, or as ``?password=``."""
    try:
        parts = urlsplit(spec.strip())
        found = [unquote(parts.password)] if parts.password else []
        return found + parse_qs(parts.query).get("password", [])
    except ValueError:
        return []


# -- values: JSON, checked to come back identical ----------------------------------------------


def encode(value) -> dict | None:
    """The JSON-able form of a summary (plain JSON data) or a trend frame (one row per
    day); None when the value would not come back exactly as it is."""
    if isinstance(value, pd.DataFrame):
        stored = _encode_frame(value)
        if stored is None:
            return None
        try:
            back = decode(json.loads(json.dumps(stored, allow_nan=False)))
        except (TypeError, ValueError):
            return None
        return stored if _same_frame(back, value) else None
    stored = {"v": value}
    try:
        text = json.dumps(stored, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return stored if _identical(json.loads(text)["v"], value) else None


def decode(stored):
    """A value from ``encode``; raises ``ValueError`` for anything else."""
    if not isinstance(stored, dict):
        raise ValueError("not a stored value")
    if "v" in stored:
        return stored["v"]
    if "frame" in stored:
        frame = stored["frame"]
        index = pd.Index(
            [date.fromisoformat(day) for day in frame["index"]],
            dtype=object,
            name=frame["index_name"],
        )
        out = pd.DataFrame(frame["data"], index=index, columns=frame["columns"], dtype=object)
        if not frame["data"]:
            out = pd.DataFrame(index=index, columns=frame["columns"])
        return out.astype(dict(zip(frame["columns"], frame["dtypes"], strict=True)))
    raise ValueError("not a stored value")


def _identical(a, b) -> bool:
    """Equal and of the same types all the way down (a tuple is not a list, 1 is not 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _encode_frame(frame: pd.DataFrame) -> dict | None:
    days = list(frame.index)
    if not all(type(day) is date for day in days):
        return None
    if not all(isinstance(c, str) for c in frame.columns):
        return None
    dtypes = [str(t) for t in frame.dtypes]
    if not all(t in ("int64", "object") for t in dtypes):
        return None
    data = frame.to_numpy(dtype=object).tolist() if len(frame) else []
    if any(not isinstance(v, int) for row in data for v in row):
        return None
    return {
        "frame": {
            "index": [day.isoformat() for day in days],
            "index_name": frame.index.name,
            "columns": list(frame.columns),
            "dtypes": dtypes,
            "data": data,
        }
    }


def _same_frame(back, frame: pd.DataFrame) -> bool:
    return (
        isinstance(back, pd.DataFrame)
        and back.equals(frame)
        and list(back.columns) == list(frame.columns)
        and list(back.dtypes) == list(frame.dtypes)
        and back.index.dtype == frame.index.dtype
        and back.index.name == frame.index.name
        and list(back.index) == list(frame.index)
    )


class JSONSerializer(BaseSerializer):
    """cachelib's serializer hook, for both backends: JSON in and out, never pickle.
    Anything unreadable is a miss (None). (Flask-Caching's file cache keeps an item count
    through the same serializer: a plain int, which JSON handles too.)"""

    def dump(self, value, f, protocol=None) -> None:
        f.write(json.dumps(value, allow_nan=False).encode())

    def load(self, f):
        return self.loads(f.read())

    def dumps(self, value, protocol=None) -> bytes:
        return json.dumps(value, allow_nan=False).encode()

    def loads(self, value):
        if value is None:
            return None
        try:
            return json.loads(value)
        except (TypeError, ValueError):
            return None


# -- cachelib's file cache logs its own errors (with a traceback, on every call) ---------------


class _Captured(threading.local):
    error: str | None = None


_captured = _Captured()
_CACHELIB = str(Path(__import__("cachelib").__file__).resolve().parent)
_filter_installed = False
_filter_lock = threading.Lock()


class _CachelibErrors(logging.Filter):
    """Turns cachelib's warnings into a reason for our one warning (see ``SharedCache``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING and os.path.realpath(record.pathname).startswith(
            _CACHELIB
        ):
            error = record.exc_info[1] if record.exc_info else None
            _captured.error = reason(error) if error is not None else record.getMessage()
            return False
        return True


def _install_filter() -> None:
    global _filter_installed
    with _filter_lock:
        if not _filter_installed:
            logging.getLogger().addFilter(_CachelibErrors())  # cachelib logs to the root
            _filter_installed = True


class SharedCache:
    """``get`` / ``set`` of JSON-able values under string keys; never raises."""

    def __init__(self, spec: str, folder: Path, timeout: int):
        self.spec = spec.strip()
        self.folder = folder  # for the file cache
        self.timeout = int(timeout)
        self.shown = shown(self.spec) if is_redis(self.spec) else str(folder)
        self._backend = None
        self._lock = threading.Lock()
        self.health = Resting(log)

    # -- the backend -------------------------------------------------------------------------
    def _make_backend(self):

        if is_redis(self.spec):
            try:
                import redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry
            except ImportError:
                raise RuntimeError(
                    'the redis package is not installed (pip install "comanage-dashboard[redis]")'
                ) from None
            client = redis.Redis.from_url(
                self.spec,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 0),
            )
            backend = RedisCache(host=client, key_prefix=KEY_PREFIX, default_timeout=self.timeout)
        else:
            _install_filter()
            self.folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.folder.mkdir(mode=0o700, exist_ok=True)  # it holds device figures
            if os.name == "posix" and self.folder.stat().st_mode & 0o077:
                self.folder.chmod(0o700)
            _captured.error = None
            backend = FileSystemCache(
                str(self.folder), threshold=THRESHOLD, default_timeout=self.timeout, mode=0o600
            )
            if _captured.error:
                raise OSError(_captured.error)
        backend.serializer = JSONSerializer()  # cachelib's documented hook
        return backend

    def _ready(self):
        """The backend, or None while it rests after a failure."""
        if self.health.resting():
            return None
        with self._lock:
            backend = self._backend
        if backend is None:
            try:
                backend = self._make_backend()
            except Exception as error:
                self._failed(error)
                return None
            with self._lock:
                self._backend = backend
        return backend

    def _failed(self, error: BaseException | str) -> None:

        why = redact(error if isinstance(error, str) else reason(error), _secrets(self.spec))
        self.health.failed(
            RETRY_SECONDS,
            f"shared cache {self.shown} does not work ({why}): each process computes its "
            f"own results meanwhile; trying again every {RETRY_SECONDS} s",
            f"shared cache {self.shown} still does not work: {why}",
        )

    def _worked(self) -> None:
        self.health.worked(f"shared cache {self.shown} works again")

    # -- the API -----------------------------------------------------------------------------
    def get(self, key: str) -> tuple[bool, object]:
        """(True, value) when another process (or this one) stored it, else (False, None)."""
        backend = self._ready()
        if backend is None:
            return False, None
        _captured.error = None
        try:
            stored = backend.get(key)
        except Exception as error:
            self._failed(error)
            return False, None
        if _captured.error:
            self._failed(_captured.error)
            return False, None
        if stored is None:
            return False, None
        try:
            value = decode(stored)
        except (KeyError, TypeError, ValueError):
            return False, None  # not ours, or damaged: compute it again
        self._worked()
        return True, value

    def set(self, key: str, value) -> bool:
        """Store a value for the other processes; False when it is not shareable (not JSON,
        too large) or the backend failed."""
        stored = encode(value)
        if stored is None or len(json.dumps(stored)) > MAX_BYTES:
            return False
        backend = self._ready()
        if backend is None:
            return False
        _captured.error = None
        try:
            done = backend.set(key, stored, timeout=self.timeout)
        except Exception as error:
            self._failed(error)
            return False
        if not done or _captured.error:
            self._failed(_captured.error or "the value could not be stored")
            return False
        self._worked()
        return True


def open_shared_cache(settings, cache_folder: Path) -> SharedCache | None:
    """The configured shared cache (not connected yet), or None when ``shared_cache`` is
    off. Entries expire after three refresh intervals (at least five minutes)."""
    spec = str(settings.shared_cache or "").strip()
    if is_off(spec):
        return None
    timeout = max(300, 3 * max(1, settings.refresh_minutes) * 60)
    return SharedCache(spec, cache_folder / FOLDER, timeout)

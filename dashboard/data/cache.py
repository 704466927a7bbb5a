"""The warm-start cache: the last validated, classified estate as Parquet files.

A refresh writes it; a restart, or another worker process of the same deployment, reads it
and serves in about a second without touching the site database. Each write goes to a new
generation folder and is published by atomically replacing ``current.json``, so a reader
never sees half a write and a crashed writer leaves the previous generation in place. The
cache is keyed by a fingerprint of everything that shapes the classified data (sources,
workloads, collections, thresholds, the tool's version): a different config never reads
another's cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from .. import __version__
from ..model.attention import RULES
from ..private import open_private, private_folder, write_private
from ..settings import Settings
from .estate import Estate, SourceReport
from .intune_source import IntuneRecords
from .sql_source import redact

POINTER = "current.json"
LOCK = "refresh.lock"


def cache_folder(settings: Settings) -> Path:
    """``cache_dir`` from the settings, else ``.comanage-cache`` beside the config file (for
    the bundled sample, in a per-user folder: see ``Settings.work_folder``)."""
    if settings.cache_dir:
        folder = Path(settings.cache_dir)
        if not folder.is_absolute() and settings.config_path is not None:
            folder = settings.work_folder / folder
        return folder
    return settings.work_folder / ".comanage-cache"


def fingerprint(settings: Settings) -> str:
    """What the classified estate depends on; secrets (passwords) are not part of it."""
    shape = {
        "version": __version__,
        "sources": [
            (s.site, str(s.csv) if s.csv else None, s.url) + ((redact(s.odbc),) if s.odbc else ())
            for s in settings.sources
        ],
        "workloads": {
            k: (w.stage, list(w.pilot_collections)) for k, w in sorted(settings.workloads.items())
        },
        "collections": list(settings.named_collections),
        "as_of": settings.as_of,
        "client_inactive_days": settings.client_inactive_days,
        "stuck_days": settings.stuck_days,  # the stuck rule's bits are in the cached frame
        # A frame cached before a rule existed has neither its bit nor its columns.
        "rules": [rule.id for rule in RULES],
    }
    if settings.intune is not None:  # the Intune source and what it is reconciled with
        intune = settings.intune
        shape["intune"] = (
            str(intune.file) if intune.file else f"{intune.tenant_id} {intune.client_id}",
            intune.stale_days,
        )
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def write_cache(estate: Estate, folder: Path, key: str) -> Path:
    """Write a new generation and publish it; older generations are removed."""
    private_folder(folder)  # it holds device data: 0700, tightened if it was wider
    generation = f"gen-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
    target = folder / generation
    target.mkdir(mode=0o700)
    with open_private(target / "devices.parquet") as handle:
        estate.devices.to_parquet(handle, index=False)
    with open_private(target / "memberships.parquet") as handle:
        estate.memberships.to_parquet(handle, index=False)
    with open_private(target / "name_ranks.npy") as handle:
        np.save(handle, estate.ranked_names())
    intune = estate.intune
    if intune is not None:
        with open_private(target / "intune.parquet") as handle:
            intune.frame.to_parquet(handle, index=False)
        with open_private(target / "intune_only.npy") as handle:
            np.save(handle, estate.intune_only)  # a second worker does not match again
    meta = {
        "intune": None
        if intune is None
        else {k: v for k, v in asdict(intune).items() if k != "frame"},
        "intune_error": estate.intune_error,
        "fingerprint": key,
        "generation": generation,
        "written": time.time(),
        "data_as_of": estate.data_as_of,
        "collection_names": estate.collection_names,
        "sources": [asdict(report) for report in estate.sources],
    }
    write_private(target / "meta.json", json.dumps(meta))
    pointer = folder / f".{POINTER}.{uuid.uuid4().hex[:8]}"
    write_private(
        pointer,
        json.dumps({"generation": generation, "fingerprint": key, "written": meta["written"]}),
    )
    os.replace(pointer, folder / POINTER)  # the publish step: atomic on Windows and POSIX
    for old in folder.glob("gen-*"):
        if old.name != generation:
            shutil.rmtree(old, ignore_errors=True)  # a reader may hold it on Windows: retry
    return target


def cache_age(folder: Path, key: str) -> float | None:
    """Seconds since the cache for ``key`` was written, or None when there is none."""
    try:
        pointer = json.loads((folder / POINTER).read_text())
    except (OSError, ValueError):
        return None
    if pointer.get("fingerprint") != key:
        return None
    return max(0.0, time.time() - float(pointer.get("written", 0)))


def read_cache(folder: Path, key: str) -> Estate | None:
    """The cached estate for ``key``, or None when there is none (or it cannot be read)."""
    found = read_generation(folder, key)
    return None if found is None else found[0]


def read_generation(folder: Path, key: str) -> tuple[Estate, str] | None:
    """``read_cache`` and the name of the generation it read (what ``write_cache``'s folder
    is called): the identity of that estate in every process (the shared results cache's
    keys name it)."""
    try:
        pointer = json.loads((folder / POINTER).read_text())
        if pointer.get("fingerprint") != key:
            return None
        target = folder / pointer["generation"]
        meta = json.loads((target / "meta.json").read_text())
        devices = pd.read_parquet(target / "devices.parquet")
        memberships = pd.read_parquet(target / "memberships.parquet")
        ranks = target / "name_ranks.npy"
        name_ranks = np.load(ranks) if ranks.exists() else None
        intune = intune_only = None
        if meta.get("intune") is not None:
            intune = IntuneRecords(
                frame=pd.read_parquet(target / "intune.parquet"), **meta["intune"]
            )
            only = target / "intune_only.npy"
            intune_only = np.load(only) if only.exists() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    estate = Estate(
        devices=devices,
        memberships=memberships,
        name_ranks=name_ranks,
        sources=[SourceReport(**report) for report in meta["sources"]],
        data_as_of=meta["data_as_of"],
        collection_names=meta["collection_names"],
        intune=intune,
        intune_error=meta.get("intune_error"),
        found_intune_only=intune_only,
    )
    return estate, target.name


@contextmanager
def refresh_lock(folder: Path):
    """Held by the one process reading the sources; yields False when another holds it.

    An operating-system lock on a file in the cache folder (``filelock``: flock on POSIX,
    msvcrt on Windows): the system releases it when its holder dies, so a service stopped in
    the middle of a load never leaves the next start waiting on a stale lock.
    """
    private_folder(folder)  # the first write's folder too
    lock = FileLock(folder / LOCK, timeout=0, mode=0o600, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()

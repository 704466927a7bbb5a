"""Files that hold device data or secrets: readable by their owner only, whatever the umask.

The warm-start cache, the history database, report outputs, the sign-in state and lock files
are created with mode 0600 in folders with mode 0700. A folder that is the dashboard's own
(the cache folder) and that others may read is tightened, with one log line saying so.
Nothing here applies on Windows, where files inherit the folder's access control list.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

POSIX = os.name == "posix"


def private_folder(path: str | Path, tighten: bool = True) -> Path:
    """``path`` as a folder (created with its missing parents, mode 0700); an existing
    folder others may enter is changed to 0700 with ``tighten`` (the dashboard's own)."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if POSIX and tighten:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            try:
                path.chmod(0o700)
                log.warning(
                    "%s was readable by other users (mode %o): changed to 700 "
                    "(it holds device data)",
                    path,
                    mode,
                )
            except OSError as error:  # not the owner: say so, keep working
                log.warning(
                    "%s is readable by other users (mode %o) and cannot be changed "
                    "(%s): chmod 700 it",
                    path,
                    mode,
                    error.strerror,
                )
    return path


def make_private(path: str | Path) -> None:
    """Mode 0600 for an existing file (nothing when it is missing or not ours)."""
    if not POSIX:
        return
    try:
        if Path(path).stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError:
        pass


def create_private(path: str | Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (then make it 0600): for files
    another library opens itself (SQLite), so they never exist with a wider mode."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    make_private(path)


def open_private(path: str | Path, mode: str = "wb", **kwargs):
    """``open(path, mode)`` for writing, the file created (or truncated) with mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    flags |= getattr(os, "O_BINARY", 0) if "b" in mode else 0
    descriptor = os.open(path, flags, 0o600)
    if POSIX:
        os.fchmod(descriptor, 0o600)  # an existing file keeps its mode otherwise
    return os.fdopen(descriptor, mode, **kwargs)


def write_private(path: str | Path, data: bytes | str) -> None:
    if isinstance(data, str):
        with open_private(path, "w", encoding="utf-8") as handle:
            handle.write(data)
    else:
        with open_private(path, "wb") as handle:
            handle.write(data)

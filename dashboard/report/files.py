"""The report's files: where they go, their names, and how they are written.

Files go to ``--out``, else ``[report] out``, else ``reports`` beside the config file. Their
names are built from the ISO week (and a scoped report's site and collection) through
``safe_filename`` and checked by ``safe_output_path``, which anything that writes a file whose
name is built from input uses (reports, exports): the result is always directly inside its
folder. They hold device figures, so they are written readable by their owner only, through a
temporary file that replaces the target at once (a reader never sees half a report).
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from ..private import private_folder, write_private
from ..settings import Settings
from . import ReportError


def output_folder(settings: Settings, out: str | None) -> Path:
    """``--out``, else ``[report] out``, else ``reports`` beside the config file."""
    if out:
        return Path(out).expanduser().resolve()
    if settings.report.out is not None:
        return settings.report.out
    return (settings.work_folder / "reports").resolve()


def file_name(
    week: str, extension: str, site: str | None = None, collection: str | None = None
) -> str:
    """``co-management-2026-W48[-PS1][-CAS00101].png``: a scoped report and the whole
    estate's report of the same week never share a name."""
    stem = "-".join(part for part in ("co-management", week, site, collection) if part)
    return safe_filename(stem, default="co-management-report") + f".{extension}"


# -- file names built from input ------------------------------------------------------

_WINDOWS_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
MAX_NAME = 150


class UnsafePathError(ValueError):
    """A file name that could leave its folder or is not valid on Windows."""


def safe_filename(text: str, default: str = "report", max_length: int = MAX_NAME) -> str:
    """A file name built from free text: letters, digits, ``. _ -`` only (others become ``-``).

    For names derived from user input (an organisation, a collection name, a date); the
    result always passes ``safe_output_path``.
    """
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-_ ")
    text = re.sub(r"\.{2,}", ".", text)[:max_length].strip(".-_ ")
    if not text or text.split(".")[0].lower() in _WINDOWS_RESERVED:
        return default
    return text


def safe_output_path(folder: str | Path, name: str) -> Path:
    """``folder / name``, refusing any ``name`` that is not one plain file name.

    Refused (``UnsafePathError``): empty names, ``.``/``..``, path separators (``/`` or
    ``\\``), drive letters and other characters Windows forbids, control characters,
    names ending in a dot or a space, reserved device names (``CON``, ``NUL.txt``, ...),
    over-long names, and a result that resolves outside ``folder`` (a symbolic link
    already there). ``folder`` itself is trusted (it comes from the configuration).
    """
    if not isinstance(name, str) or not name:
        raise UnsafePathError("empty file name")
    if len(name) > MAX_NAME:
        raise UnsafePathError(f"file name longer than {MAX_NAME} characters")
    if name in (".", "..") or _UNSAFE_CHARS.search(name):
        raise UnsafePathError(f"not a plain file name: {name!r}")
    if name[-1] in ". " or name[0] == " ":
        raise UnsafePathError(
            f"file name starts with a space or ends with a dot or a space: {name!r}"
        )
    if name.split(".")[0].strip().lower() in _WINDOWS_RESERVED:
        raise UnsafePathError(f"reserved device name on Windows: {name!r}")
    base = Path(folder).resolve()
    target = (base / name).resolve()
    if target.parent != base:
        raise UnsafePathError(f"{name!r} would leave {base}")
    return target


def write_report_file(folder: Path, name: str, content: bytes) -> Path:
    """Write ``content`` as ``folder/name`` (owner only), creating the folder if it is not
    there (a folder we create is ours alone; one given is kept as it is)."""
    try:
        if not folder.exists():
            private_folder(folder)
    except OSError as error:
        raise ReportError(
            f"cannot create {folder}: {error.strerror or error}", exit_code=1
        ) from None
    target = safe_output_path(folder, name)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write_private(temporary, content)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ReportError(
            f"cannot write {target}: {error.strerror or error}", exit_code=1
        ) from None
    return target

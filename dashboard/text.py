"""Small text helpers that the commands, the pages, the report and the sources share."""

from __future__ import annotations


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """The first line of an error's text (its type's name when it has none), at most
    ``limit`` characters: errors are shown in one line, never as a traceback."""
    text = str(error).strip()
    if not text:
        return type(error).__name__ if isinstance(error, BaseException) else ""
    return text.splitlines()[0][:limit]


def pct(part: int, whole: int) -> str:
    """``part`` as a percentage of ``whole`` (``"12.5 %"``), ``"-"`` when there is no whole."""
    return f"{100 * part / whole:.1f} %" if whole else "-"


def change_text(delta: int | None) -> str:
    """``+12`` or ``-3``; blank without a figure to compare with."""
    return "" if delta is None else f"{delta:+,}"

"""ODBC connection strings (``Driver={...};Server=...;Database=...``) read as key/value pairs.

Its own module because both the settings (checking an ``odbc =`` source) and the SQL source
(connecting with it) read them, and the SQL source already depends on the settings.
"""

from __future__ import annotations

import re

_ODBC_PAIR = re.compile(r"(?P<key>[^=;]+?)\s*=\s*(?P<value>\{(?:[^}]|\}\})*\}|[^;]*)\s*(?:;|$)")


def odbc_pairs(connection_string: str) -> list[tuple[str, str, str]]:
    """``(key, value, text)`` of each ``key=value`` of an ODBC connection string; a value in
    braces is unbraced (``}}`` is a literal ``}``)."""
    pairs = []
    for match in _ODBC_PAIR.finditer(connection_string):
        key, value = match["key"].strip(), match["value"].strip()
        if value.startswith("{") and value.endswith("}"):
            value = value[1:-1].replace("}}", "}")
        if key:
            pairs.append((key, value, match[0].strip().rstrip(";").strip()))
    return pairs


def odbc_value(connection_string: str, *keys: str) -> str | None:
    """The value of the first of ``keys`` (any case) in a connection string, else None."""
    wanted = {k.lower() for k in keys}
    return next((v for k, v, _ in odbc_pairs(connection_string) if k.lower() in wanted), None)

"""Print the settings table for the README, from the one declaration in dashboard/settings.py.

    python scripts/settings_table.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.settings import SETTINGS  # noqa: E402


def table() -> str:
    lines = ["| setting | default | environment | what it does |", "|---|---|---|---|"]
    for setting in SETTINGS:
        default = setting.default
        shown = "(empty)" if default in ("", (), []) else f"`{default}`"
        text = setting.help.replace("|", "\\|")
        lines.append(f"| `{setting.name}` | {shown} | `{setting.env}` | {text} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())

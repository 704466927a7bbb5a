"""The settings table for the README, from the one declaration in dashboard/settings.py.

python scripts/settings_table.py            # print it
python scripts/settings_table.py --readme   # write it into README.md between the markers
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.settings import SETTINGS


def table() -> str:
    lines = ["| setting | default | environment | what it does |", "|---|---|---|---|"]
    for setting in SETTINGS:
        default = setting.default
        shown = "(empty)" if default in ("", (), []) else f"`{default}`"
        text = setting.help.replace("|", "\\|")
        lines.append(f"| `{setting.name}` | {shown} | `{setting.env}` | {text} |")
    return "\n".join(lines)


README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings-table -->", "<!-- /settings-table -->"


def update_readme() -> None:
    text = README.read_text()
    before, rest = text.split(START, 1)
    _old, after = rest.split(END, 1)
    README.write_text(f"{before}{START}\n{table()}\n{END}{after}")


if __name__ == "__main__":
    if "--readme" in sys.argv:
        update_readme()
    else:
        print(table())

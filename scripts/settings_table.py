"""The settings table of docs/configuration.md, from the one declaration in
dashboard/settings.py.

python scripts/settings_table.py            # print it
python scripts/settings_table.py --write    # into docs/configuration.md, between the markers
"""

from __future__ import annotations

import argparse
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


CONFIGURATION = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
START, END = "<!-- settings-table -->", "<!-- /settings-table -->"


def update_configuration() -> None:
    text = CONFIGURATION.read_text()
    before, rest = text.split(START, 1)
    _old, after = rest.split(END, 1)
    CONFIGURATION.write_text(f"{before}{START}\n{table()}\n{END}{after}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--write",
        action="store_true",
        help="write the table into docs/configuration.md between its markers",
    )
    if parser.parse_args().write:
        update_configuration()
    else:
        print(table())

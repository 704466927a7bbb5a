"""Full-page screenshots of the dashboard in a headless Chromium.

    python scripts/screenshot.py                       # docs/overview.png from the sample
    python scripts/screenshot.py --config X --out /tmp/shots --sizes 1366x768 1920x1080 \
        --path "/?collection=CAS00101"

The app runs in-process on a free loopback port with its data loaded before the first
request, so the picture never shows "Loading".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.report.capture import chromium, serving, wait_for_dash  # noqa: E402
from dashboard.settings import SettingsError, load_settings  # noqa: E402
from dashboard.store import EstateStore  # noqa: E402
from dashboard.web.app import create_app  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="TOML config (default: the bundled sample)")
    parser.add_argument("--out", help="output folder (default: docs/, file overview.png)")
    parser.add_argument("--sizes", nargs="+", default=["1366x768"], metavar="WxH")
    parser.add_argument(
        "--path", action="append", default=None, help="page path to capture (repeatable; default /)"
    )
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    try:
        settings = load_settings(args.config)
    except SettingsError as error:
        print(
            f"error: {error} (generate the sample with `comanage-dashboard sample --out "
            f"sample_data`, or pass --config)",
            file=sys.stderr,
        )
        return 2
    from dashboard.data.history import open_history

    store = EstateStore(settings, history=open_history(settings, read_only=True))
    if not store.refresh():
        print(f"error: {store.status().error}", file=sys.stderr)
        return 2
    app = create_app(settings, store)
    paths = args.path or ["/"]
    default_out = args.out is None
    out = Path(args.out) if args.out else ROOT / "docs"
    out.mkdir(parents=True, exist_ok=True)
    with serving(app) as base, sync_playwright() as playwright, chromium(playwright) as browser:
        for size in args.sizes:
            width, height = (int(v) for v in size.lower().split("x"))
            page = browser.new_page(viewport={"width": width, "height": height})
            for path in paths:
                page.goto(base + path)
                wait_for_dash(page, graphs=6 if path.split("?")[0] == "/" else 0)
                page.wait_for_timeout(500)  # let plotly finish its transitions
                if default_out and path == "/" and size == args.sizes[0]:
                    name = "overview.png"
                else:
                    slug = path.strip("/").replace("/", "_").replace("?", "_") or "overview"
                    name = f"{slug}-{width}x{height}.png"
                page.screenshot(path=str(out / name), full_page=True)
                print(out / name)
            page.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

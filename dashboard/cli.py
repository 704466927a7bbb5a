"""The ``comanage-dashboard`` command: wires settings to the rest and holds no logic.

Exit codes: 0 success (warnings about dropped rows included), 2 a problem the user must fix
(bad config, unreadable source, unknown filter; for an Intune source that cannot be read,
``summary`` prints the ConfigMgr figures first), 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from . import __version__
from .checked_load import UsageError, load_checked, progress
from .settings import SETTINGS, Settings, SettingsError, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    overrides = {
        s.name: getattr(args, s.name, None)
        for s in SETTINGS
        if getattr(args, s.name, None) is not None
    }
    return settings.with_values(**overrides) if overrides else settings


def cmd_summary(args: argparse.Namespace) -> int:
    from .data.history import open_history
    from .model.summary import summarize
    from .summary_table import format_table

    settings = _settings(args)
    estate = load_checked(settings, args, open_history(settings, read_only=True))
    summary = summarize(
        estate.devices,
        [s.as_dict() for s in estate.sources],
        estate.data_as_of,
        estate.mask(args.site, args.collection),
        intune=estate.intune_figures(),
    )
    if args.format == "json":
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(format_table(summary, settings))
    # An Intune source that cannot be read is a source the user must fix (exit 2, its error
    # on stderr), though the ConfigMgr figures above are complete and printed.
    return 2 if estate.intune_error else 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .data.sample_command import main_sample

    # A new user's sample shows duplicate records too, as real site databases hold them.
    main_sample(
        devices=args.devices,
        seed=args.seed,
        out=args.out,
        sqlite=args.sqlite,
        as_of=args.as_of,
        quiet=args.quiet,
        history_weeks=args.history_weeks,
        duplicates=True,
    )
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    from .data.history import open_history

    settings = _settings(args)
    history = open_history(settings)
    if history is None:
        raise UsageError('history is off (history_url = "off"): nothing to record')
    if history.read_only:
        raise UsageError(
            "the bundled sample's history is never written: give --config of "
            "your own estate, or make a copy with `comanage-dashboard sample "
            "--out DIR`"
        )
    estate = load_checked(settings, args, history)
    started = time.perf_counter()
    infos = history.record(estate, settings.collections)
    for info in infos:
        print(
            f"{info.site} {info.day}: {info.devices:,} devices "
            f"{'recorded' if info.written else 'unchanged (already recorded)'}"
        )
    progress(args, f"history {history.shown}: done in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .web.server import serve

    settings = _settings(args)
    try:
        serve(settings, debug=args.debug, quiet=args.quiet, allow_anonymous=args.allow_anonymous)
    except OSError as error:
        raise UsageError(
            f"cannot listen on {settings.host}:{settings.port}: {error.strerror or error}"
        ) from None
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report.command import run

    return run(_settings(args), args)


def cmd_user(args: argparse.Namespace) -> int:
    from .web.auth import user_command

    return user_command(
        _settings(args),
        args.action,
        getattr(args, "name", None),
        password_stdin=getattr(args, "password_stdin", False),
        reset=getattr(args, "reset", False),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comanage-dashboard",
        description="Co-management dashboard for Configuration Manager and Intune.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config",
            metavar="FILE",
            help="TOML config file (default: $COMANAGE_CONFIG, else the bundled sample estate)",
        )
        sub.add_argument("--quiet", action="store_true", help="no progress messages")

    def scope(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--site", help="only this site's devices")
        sub.add_argument(
            "--collection",
            metavar="ID",
            help="only members of this collection (one the config names)",
        )

    summary = commands.add_parser("summary", help="print the co-management aggregates")
    common(summary)
    scope(summary)
    summary.add_argument("--format", choices=("table", "json"), default="table")
    summary.set_defaults(func=cmd_summary)

    serve = commands.add_parser("serve", help="serve the dashboard in a browser (waitress)")
    common(serve)
    serve.add_argument("--host", help="address to bind (default 127.0.0.1: loopback only)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8050)")
    serve.add_argument(
        "--debug",
        action="store_true",
        help="Flask's development server with Dash dev tools (not for production)",
    )
    serve.add_argument(
        "--allow-anonymous",
        action="store_true",
        help="serve a non-loopback address with auth = none (everyone who can "
        "reach it sees every device)",
    )
    serve.set_defaults(func=cmd_serve)

    user = commands.add_parser("user", help="manage sign-in accounts (auth = users)")
    user_actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    user_add = user_actions.add_parser("add", help="add an account (asks for the password)")
    common(user_add)
    user_add.add_argument("name")
    user_add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    user_add.add_argument(
        "--reset", action="store_true", help="set a new password for an existing account"
    )
    user_remove = user_actions.add_parser("remove", help="remove an account (ends its sessions)")
    common(user_remove)
    user_remove.add_argument("name")
    common(user_actions.add_parser("list", help="list the accounts"))
    user.set_defaults(func=cmd_user)

    sample = commands.add_parser("sample", help="generate a realistic sample estate")
    sample.add_argument("--devices", type=int, default=5000, metavar="N")
    sample.add_argument("--seed", type=int, default=42, metavar="S")
    sample.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the CSV exports and comanage.toml"
    )
    sample.add_argument(
        "--sqlite",
        metavar="FILE",
        help="also write a SQLite replica of the site views (one per site)",
    )
    sample.add_argument(
        "--as-of",
        dest="as_of",
        metavar="DATE",
        help="the estate's 'as of' time (ISO 8601; default now)",
    )
    sample.add_argument(
        "--history-weeks",
        dest="history_weeks",
        type=int,
        default=26,
        metavar="N",
        help="also write N weekly snapshots ending at --as-of to "
        "history.sqlite in --out (default 26; 0: no history)",
    )
    sample.add_argument("--quiet", action="store_true", help="no progress messages")
    sample.set_defaults(func=cmd_sample)

    snapshot = commands.add_parser(
        "snapshot",
        help="record today's snapshot in the history store (for cron or a "
        "scheduled task; serve records one at each refresh)",
    )
    common(snapshot)
    snapshot.set_defaults(func=cmd_snapshot)

    report = commands.add_parser(
        "report",
        help="the weekly report: PNG, PDF and an HTML e-mail summary (--mail "
        "sends it); needs Chromium, Chrome or Edge for PNG and PDF",
    )
    common(report)
    report.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default: [report] out, else `reports` beside the config file)",
    )
    report.add_argument(
        "--week",
        metavar="YYYY-Www",
        help="ISO week, e.g. 2026-W48 (default: the current data's week; an "
        "earlier week shows its newest snapshot from history)",
    )
    report.add_argument(
        "--format",
        default="png,pdf,html",
        metavar="LIST",
        help="comma-separated subset of png,pdf,html (default: all three)",
    )
    scope(report)
    report.add_argument(
        "--paper",
        choices=("A4", "Letter"),
        help="PDF paper size (default: [report] paper, else A4)",
    )
    report.add_argument(
        "--url",
        metavar="URL",
        help="use the report page of a running dashboard instead of loading the data here",
    )
    report.add_argument(
        "--user",
        metavar="NAME",
        help="with --url and auth = users: sign in as NAME (password in $COMANAGE_REPORT_PASSWORD)",
    )
    report.add_argument(
        "--header",
        action="append",
        metavar="'NAME: VALUE'",
        help="with --url: add this request header (repeatable)",
    )
    report.add_argument(
        "--mail",
        action="store_true",
        help="send the HTML summary with the PNG and PDF attached ([report.mail] in the config)",
    )
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .data.contract import ContractError
    from .data.estate import LoadError
    from .data.history import HistoryError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (SettingsError, LoadError, ContractError, UsageError, HistoryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

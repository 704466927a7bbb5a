"""Loading the estate for a command: progress and drop warnings on stderr, ``--site`` and
``--collection`` checked. Shared by the ``comanage-dashboard`` subcommands and the report
command, which is why it is not in ``cli``.
"""

from __future__ import annotations

import argparse
import sys
import time

from .data.estate import load_estate
from .settings import Settings


class UsageError(Exception):
    """Exit 2 with this one line."""


def progress(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False) and getattr(args, "format", "table") != "json":
        print(message, file=sys.stderr, flush=True)


def load_checked(settings: Settings, args: argparse.Namespace, history=None):
    """Load the estate, print drop warnings to stderr, and validate --site/--collection.

    ``history``: time in state from it (the ``stuck`` rule), as ``serve`` does."""
    started = time.perf_counter()
    progress(args, f"loading {len(settings.sources)} source(s) ...")
    estate = load_estate(settings, history=history)
    for report in estate.sources:
        if report.dropped:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(report.reasons.items()))
            print(
                f"warning: site {report.site}: dropped {report.dropped} of {report.rows} "
                f"rows ({reasons})",
                file=sys.stderr,
            )
            for line in report.problems:
                print(f"warning:   {line}", file=sys.stderr)
    intune = estate.intune
    if estate.intune_error:
        # The ConfigMgr figures still load and print; the command's exit code says this.
        print(f"error: Intune: {estate.intune_error}", file=sys.stderr)
    elif intune is not None and intune.dropped:
        print(
            f"warning: Intune ({intune.source}): dropped {intune.dropped} of {intune.records} rows",
            file=sys.stderr,
        )
        for line in intune.problems:
            print(f"warning:   {line}", file=sys.stderr)
    progress(
        args, f"loaded {len(estate.devices):,} devices in {time.perf_counter() - started:.1f} s"
    )
    site = getattr(args, "site", None)
    if site and site not in [s.site for s in settings.sources] + estate.sites:
        raise UsageError(
            f"unknown site {site!r} (configured: {', '.join(s.site for s in settings.sources)})"
        )
    collection = getattr(args, "collection", None)
    if collection and collection not in settings.named_collections:
        raise UsageError(
            f"collection {collection!r} is not named in the configuration "
            f"(named: {', '.join(settings.named_collections) or 'none'})"
        )
    return estate

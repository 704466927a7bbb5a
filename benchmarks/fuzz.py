"""Long fuzzing runs of the CSV loader and the state model (the CI runs ~200 examples each).

    python benchmarks/fuzz.py                    # 2,000 inputs per target
    python benchmarks/fuzz.py --examples 20000   # longer
    python benchmarks/fuzz.py --target csv       # one target: csv, bytes, model

Uses the strategies of ``tests/data/test_fuzz_csv.py`` and ``tests/model/test_invariants.py``.
Every input is checked; a failure (an exception other than ``ContractError``/``LoadError`` from
a load, or a count that does not add up) is counted and the first few are printed, instead of
stopping at the first one as pytest does. Prints, per target, the figures for the README:

    csv loader (generated folders): 2,000 inputs tried (1,012 loaded, 988 refused cleanly),
    errors: 0   (on one line)
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.data import test_fuzz_csv as csv_fuzz  # noqa: E402
from tests.model import test_invariants as model_fuzz  # noqa: E402

SHOWN_ERRORS = 3


def run(name: str, strategy, check, examples: int, seed: int | None) -> int:
    """Feed ``examples`` inputs to ``check``; print the figures; return the error count."""
    outcomes: Counter = Counter()
    failures: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def target(value):
        try:
            outcomes[check(value) or "checked"] += 1
        except Exception:
            outcomes["error"] += 1
            if len(failures) < SHOWN_ERRORS:
                failures.append(f"{traceback.format_exc(limit=3)}\ninput: {value!r}"[:3000])

    if seed is not None:
        from hypothesis import seed as hypothesis_seed

        target = hypothesis_seed(seed)(target)
    started = time.perf_counter()
    target()
    seconds = time.perf_counter() - started
    tried = sum(outcomes.values())
    errors = outcomes.pop("error", 0)
    detail = ", ".join(f"{count:,} {label}" for label, count in sorted(outcomes.items()))
    print(
        f"{name}: {tried:,} inputs tried ({detail}), errors: {errors} [{seconds:.0f} s]", flush=True
    )
    for failure in failures:
        print("  " + failure.replace("\n", "\n  "), file=sys.stderr)
    return errors


def csv_folders(value):
    devices, memberships = value
    outcome = csv_fuzz.check_folder(devices, memberships)
    return "refused cleanly" if outcome == "refused" else outcome


def random_bytes(value):
    outcome = csv_fuzz.check_folder(value, None)
    return "refused cleanly" if outcome == "refused" else outcome


def model(value):
    model_fuzz.check(*value)
    return "estates checked"


TARGETS = {
    "csv": (
        "csv loader (generated folders)",
        st.tuples(csv_fuzz.device_files(), csv_fuzz.membership_files()),
        csv_folders,
    ),
    "bytes": ("csv loader (random bytes)", st.binary(max_size=2000), random_bytes),
    "model": ("state model (random estates)", model_fuzz.estates(), model),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples", type=int, default=2000, metavar="N", help="inputs per target (default 2000)"
    )
    parser.add_argument(
        "--target",
        choices=sorted(TARGETS),
        action="append",
        help="run only this target (repeatable; default all)",
    )
    parser.add_argument("--seed", type=int, help="random seed (default: a fixed sequence)")
    args = parser.parse_args(argv)
    errors = 0
    for key in args.target or list(TARGETS):
        name, strategy, check = TARGETS[key]
        errors += run(name, strategy, check, args.examples, args.seed)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""The README and docs/ are the user's manual: every setting and every command is in them, every
command they show runs as shown (as far as it can run here: its program, subcommand, options
and choices exist), and every relative link leads to a file and heading that exist."""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import unquote

import pytest

from dashboard.cli import build_parser
from dashboard.settings import SETTINGS
from scripts.settings_table import END, START, table

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
MANUAL = "\n".join(page.read_text() for page in PAGES)

# Code blocks in these languages hold commands (ini: a systemd unit's ExecStart); others
# (toml, xml, sql, nginx, apache) hold files.
SHELLS = {"", "sh", "bash", "console", "shell", "powershell", "ps1", "cmd", "ini"}
FENCE = re.compile(r"^```(\S*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")
# The command as a program: at the start of a command (line start, after && ; | or the
# opening of an inline span) or as a path ending in it (C:\...\comanage-dashboard.exe,
# /opt/.../comanage-dashboard). A service named comanage-dashboard (nssm, sc.exe, systemctl)
# is none of these.
DASHBOARD = re.compile(
    r"(?:^|(?<=&& )|(?<=; )|(?<=\| )|(?<=[\\/]))"
    r"(?:comanage-dashboard(?:\.exe)?|python -m dashboard)"
    r"(?:'\s+-Argument\s+'|\s+)(?P<args>[a-z-][^'\"#|&\n]*)",
    re.MULTILINE,
)
SCRIPT = re.compile(r"python (?P<script>(?:benchmarks|scripts)/[\w-]+\.py)(?P<args>[^#&|\n]*)")
PYTEST = re.compile(r"python -m pytest(?P<args>[^#&|\n]*)")
TOOL = re.compile(
    r"(?:^|(?<=&& )|(?<=[\\/]))(?P<tool>ruff|gunicorn|waitress-serve)(?=\s|$)(?P<args>[^#&|\n]*)",
    re.M,
)
EXTRA = re.compile(r"pip install [^\n]*?\"?(?:\.|comanage-dashboard)\[(?P<extras>[\w,-]+)\]")
WSGI = re.compile(r"\b(?P<module>dashboard(?:\.\w+)+):(?P<attr>\w+)\b")
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def _commands(page: Path) -> list[tuple[str, str]]:
    """(where, text) of every command the page shows: each line of a shell code block, and
    each inline code span outside code blocks."""
    text = page.read_text()
    found = []
    for block in FENCE.finditer(text):
        if block.group(1).lower() in SHELLS:
            start = text.count("\n", 0, block.start(2)) + 1
            for offset, line in enumerate(block.group(2).splitlines()):
                found.append((f"{page.name}:{start + offset}", line))
    prose = FENCE.sub(lambda block: "\n" * block.group(0).count("\n"), text)
    for span in INLINE.finditer(prose):
        line = prose.count("\n", 0, span.start()) + 1
        found.append((f"{page.name}:{line}", " ".join(span.group(1).split())))
    return found


COMMANDS = [command for page in PAGES for command in _commands(page)]


def _shown(pattern: re.Pattern) -> list[tuple[str, re.Match]]:
    return [(where, match) for where, text in COMMANDS for match in pattern.finditer(text)]


def _words(args: str) -> list[str]:
    try:
        return shlex.split(args, posix=False)
    except ValueError:  # an unclosed quote in a synopsis
        return args.split()


def _options(words: list[str]) -> list[str]:
    """The long options a command line (or a synopsis like ``[--site S]``) names."""
    return [
        found.group(0)
        for word in words
        if (found := re.match(r"--[a-z][a-z-]*", word.strip("[]()|")))
    ]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _check_dashboard_command(where: str, args: str) -> None:
    words = _words(args.strip())
    parser = build_parser()
    if words == ["--version"]:
        return
    commands = _subparsers(parser)
    assert words and words[0] in commands, f"{where}: unknown command in {args!r}"
    if len(words) > 1 and not re.search(r"[\[|]|\.\.\.", args):
        # A concrete command line: the real parser must accept it as written.
        try:
            parser.parse_args(words)
        except SystemExit:
            raise AssertionError(
                f"{where}: `comanage-dashboard {args.strip()}` does not parse"
            ) from None
        return
    # A synopsis or a reference to a command: every word it names must exist.
    sub = commands[words[0]]
    actions = _subparsers(sub)
    parsers = [sub]
    if actions:
        if len(words) > 1 and not words[1].startswith(("-", "[")):
            assert words[1] in actions, f"{where}: unknown action {words[1]!r} in {args!r}"
            parsers = [actions[words[1]]]
        else:
            parsers = list(actions.values())
    known = {
        option: p._option_string_actions[option]
        for p in parsers
        for option in p._option_string_actions
    }
    for index, word in enumerate(words):
        for option in _options([word]):
            assert option in known, f"{where}: {option} is not an option of {args!r}"
            choices = known[option].choices
            value = words[index + 1].strip("[]") if index + 1 < len(words) else ""
            if choices and value and not value.startswith("-"):
                for choice in value.split("|"):
                    assert choice in choices, f"{where}: {option} {choice} is not a choice"


def test_every_setting_is_documented_with_its_environment_variable():
    for setting in SETTINGS:
        assert f"`{setting.name}`" in CONFIGURATION, setting.name
        assert setting.env in CONFIGURATION, setting.env


def test_the_settings_table_is_the_declarations():
    shown = CONFIGURATION.split(START, 1)[1].split(END, 1)[0].strip()
    assert shown == table(), (
        "docs/configuration.md's settings table differs from dashboard/settings.py: "
        "run `python scripts/settings_table.py --write`"
    )


def test_every_command_is_documented():
    commands = _subparsers(build_parser())
    for name in commands:
        assert f"comanage-dashboard {name}" in MANUAL, name


def test_quick_start_commands_are_the_ones_ci_runs():
    readme = README.read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pip install -e . && comanage-dashboard serve" in readme
    assert 'python -m pip install -e ".[test]" && python -m pytest' in readme
    assert 'python -m pip install -q -e ".[test]" && python -m pytest' in ci


def test_every_dashboard_command_shown_parses():
    shown = _shown(DASHBOARD)
    assert len(shown) > 30  # the manual's command lines are found at all
    for where, match in shown:
        _check_dashboard_command(where, match.group("args"))


def test_the_command_check_catches_mistakes():
    # The check above must fail on what a stale manual would show.
    for wrong in (
        "summary --formats json",
        "sumary",
        "report --paper A5",
        "serve [--colour]",
        "user rename NAME",
        "summary --format [yaml]",
    ):
        with pytest.raises(AssertionError):
            _check_dashboard_command("test", wrong)


@functools.cache
def _help(*command: str) -> str:
    done = subprocess.run(
        [*command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{' '.join(command)} --help\n{done.stderr}"
    return done.stdout


def _offers(usage: str, option: str) -> bool:
    """The help text lists this option itself, not only a longer one (--thread, --threads)."""
    return re.search(rf"{re.escape(option)}(?![\w-])", usage) is not None


def test_every_script_shown_exists_with_its_options():
    shown = _shown(SCRIPT)
    assert {match.group("script") for _where, match in shown} >= {
        "benchmarks/run.py",
        "benchmarks/load.py",
        "benchmarks/first_visit.py",
        "benchmarks/fuzz.py",
        "scripts/settings_table.py",
        "scripts/screenshot.py",
    }
    for where, match in shown:
        script = match.group("script")
        assert (ROOT / script).is_file(), f"{where}: {script} does not exist"
        usage = _help(sys.executable, script)
        for option in _options(_words(match.group("args"))):
            assert _offers(usage, option), f"{where}: {script} has no {option}"


def test_every_tool_shown_is_installed_with_its_options():
    bin_dir = Path(sys.executable).parent
    shown = _shown(TOOL)
    assert {match.group("tool") for _where, match in shown} >= {"ruff", "gunicorn"}
    for where, match in shown:
        tool, words = match.group("tool"), _words(match.group("args"))
        program = bin_dir / tool
        assert program.exists(), f"{where}: {tool} is not installed by the project's extras"
        sub = [words[0]] if tool == "ruff" and words and not words[0].startswith("-") else []
        usage = _help(str(program), *sub)
        for option in _options(words):
            assert _offers(usage, option), f"{where}: {tool} {' '.join(sub)} has no {option}"


def test_every_pytest_marker_and_path_shown_exists():
    declared = {
        line.split(":")[0].strip() for line in PYPROJECT["tool"]["pytest"]["ini_options"]["markers"]
    }
    shown = _shown(PYTEST)
    assert shown
    for where, match in shown:
        words = _words(match.group("args"))
        for index, word in enumerate(words):
            if word == "-m":
                expression = words[index + 1].strip("\"'")
                for name in re.findall(r"\w+", expression):
                    assert name in {"and", "or", "not"} | declared, f"{where}: marker {name}"
            elif word.startswith("tests/"):
                assert (ROOT / word.split("::")[0]).exists(), f"{where}: {word}"


def test_every_extra_and_wsgi_application_shown_exists():
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    shown = _shown(EXTRA)
    assert shown
    for where, match in shown:
        for extra in match.group("extras").split(","):
            assert extra in extras, f"{where}: no extra [{extra}]"
    applications = [(where, match) for where, text in COMMANDS for match in WSGI.finditer(text)]
    assert applications
    for where, match in applications:
        module = match.group("module")
        assert importlib.util.find_spec(module), f"{where}: no module {module}"
        loaded = importlib.import_module(module)
        # dashboard.web.wsgi builds its app lazily, on first access, through __getattr__.
        assert match.group("attr") in vars(loaded) or "__getattr__" in vars(loaded), where


def _anchors(page: Path) -> set[str]:
    """GitHub's ids for a page's headings: lower case, punctuation dropped, spaces to '-'."""
    ids = set()
    for heading in re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.MULTILINE):
        ids.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return ids


def test_every_relative_link_resolves():
    checked = 0
    for page in PAGES:
        text = FENCE.sub("", page.read_text())
        for match in LINK.finditer(text):
            target = match.group("target")
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / unquote(path)).resolve() if path else page
            assert file.exists(), f"{page.name}: link to {target} (no such file)"
            assert file.is_relative_to(ROOT), f"{page.name}: link {target} leaves the repository"
            if anchor and file.suffix == ".md":
                assert anchor in _anchors(file), f"{page.name}: link to {target} (no such heading)"
            checked += 1
    assert checked > 20


def test_the_docs_cite_nothing_outside_the_repository():
    assert "domain.md" not in MANUAL


def test_the_definitions_keep_their_section_numbers():
    # Code and tests cite "docs/definitions.md §N": the numbers are part of the interface.
    text = (ROOT / "docs" / "definitions.md").read_text()
    numbers = [int(n) for n in re.findall(r"^## (\d+)\. ", text, re.MULTILINE)]
    assert numbers == list(range(1, 9))
    cited = {
        (path.relative_to(ROOT).as_posix(), int(number))
        for folder in ("dashboard", "tests", "benchmarks", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        for number in re.findall(r"definitions\.md §(\d+)", path.read_text())
    }
    assert not [(path, n) for path, n in cited if n not in numbers], sorted(cited)

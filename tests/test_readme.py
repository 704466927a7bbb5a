"""The README is the user's manual: every setting and every command is in it."""

from pathlib import Path

from dashboard.cli import build_parser
from dashboard.settings import SETTINGS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented_with_its_environment_variable():
    for setting in SETTINGS:
        assert f"`{setting.name}`" in README, setting.name
        assert setting.env in README, setting.env


def test_every_command_is_documented():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in commands:
        assert f"comanage-dashboard {name}" in README, name


def test_quick_start_commands_are_the_ones_ci_runs():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert 'python -m pip install -e ".[test]" && python -m pytest' in README
    assert 'python -m pip install -q -e ".[test]" && python -m pytest' in ci

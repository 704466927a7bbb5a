"""``comanage-dashboard user add|remove|list``: manage the accounts of ``auth = "users"``."""

from __future__ import annotations

import getpass
import sys

from ...settings import Settings
from .accounts import AuthError, UserFile, check_password, check_user_name, users_path


def _read_password(password_stdin: bool, stdin, stderr) -> str:
    if password_stdin:
        line = stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
        if not password:
            raise AuthError("no password on standard input")
        return check_password(password)
    if not (hasattr(stdin, "isatty") and stdin.isatty()):
        raise AuthError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password: ", stream=stderr)
    check_password(first)
    if getpass.getpass("Password again: ", stream=stderr) != first:
        raise AuthError("the two passwords differ")
    return first


def user_command(
    settings: Settings,
    action: str,
    name: str | None = None,
    password_stdin: bool = False,
    reset: bool = False,
    stdin=None,
    stdout=None,
    stderr=None,
) -> int:
    """``user add NAME [--password-stdin] [--reset] | remove NAME | list``."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    users = UserFile(users_path(settings))
    if action == "list":
        for user, entry in sorted(users.users().items()):
            print(f"{user}\tchanged {entry.get('changed', '?')}", file=stdout)
        if not users.users():
            print(f"no users in {users.path}", file=stderr)
        return 0
    check_user_name(name or "")
    if action == "add":
        password = _read_password(password_stdin, stdin, stderr)
        created = users.add(name, password, replace=reset)
        print(f"{'added' if created else 'new password for'} {name} in {users.path}", file=stderr)
        if settings.auth != "users":
            print(
                'note: sign-in is not on: set auth = "users" in the config (or '
                "COMANAGE_AUTH=users)",
                file=stderr,
            )
        return 0
    if action == "remove":
        users.remove(name)
        print(f"removed {name} from {users.path} (their sessions end now)", file=stderr)
        return 0
    raise AuthError(f"unknown user action {action!r}")  # pragma: no cover

"""Settings, declared once: the CLI, the config file, the environment and the README all use
the table below (``SETTINGS``).

Precedence, lowest first: built-in default < config file (TOML) < environment variable
(``COMANAGE_<NAME>``) < command-line flag. With no config file at all, the bundled sample
estate's config (``sample_data/comanage.toml``) is used, so a fresh clone shows numbers.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from .data.intune_settings import IntuneSettings, IntuneSettingsError, intune_settings
from .odbc_string import odbc_pairs, odbc_value


def _data_folder(package: str) -> Path:
    """A data package's folder: the repository's top-level ``queries/`` or ``sample_data/``
    in a checkout (editable install), the installed copy from a wheel."""
    folder = resources.files(package)
    if not isinstance(folder, Path):  # e.g. imported from a zip file
        raise RuntimeError(
            f"{package} is not a folder on disk ({folder}): install "
            "comanage-dashboard with pip or pipx, not as a zip"
        )
    return folder


SAMPLE_DIR = _data_folder("dashboard.sample_data")
SAMPLE_CONFIG = SAMPLE_DIR / "comanage.toml"
QUERIES_DIR = _data_folder("dashboard.queries")


def user_folder() -> Path:
    """Where the bundled sample's warm-start cache, reports and accounts go: a per-user
    folder, since the sample itself may sit in a read-only site-packages and is never
    written (``%LOCALAPPDATA%``, ``~/Library/Caches`` or ``$XDG_CACHE_HOME``, else
    ``~/.cache``; then ``comanage-dashboard/sample``)."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "comanage-dashboard" / "sample"


WORKLOADS: dict[str, tuple[int, str]] = {
    # key: (MDMWorkloads bit, label in the ConfigMgr console)
    "compliance_policies": (2, "Compliance policies"),
    "resource_access_policies": (4, "Resource access policies"),
    "device_configuration": (8, "Device configuration"),
    "windows_update_policies": (16, "Windows Update policies"),
    "endpoint_protection": (32, "Endpoint Protection"),
    "client_apps": (64, "Client apps"),
    "office_click_to_run_apps": (128, "Office Click-to-Run apps"),
}
STAGES = ("configmgr", "pilot", "intune")


T = TypeVar("T")


class SettingsError(Exception):
    """A configuration a user must fix; the message names the file and the key."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    kind: type
    help: str

    @property
    def env(self) -> str:
        return "COMANAGE_" + self.name.upper()


def boolean(value: object) -> bool:
    """A yes/no setting: true/false in TOML; 1/0, true/false, yes/no, on/off elsewhere."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)


def string_list(value: object) -> tuple[str, ...]:
    """A list setting: a TOML list of strings, or one string of comma-separated items."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return tuple(item.strip() for item in value if item.strip())
    raise TypeError(value)


def setting(default: T, kind: Callable[[Any], object], help: str) -> T:
    """Declare a scalar setting (a field of ``Settings``): its default, how a value from a
    file, the environment or the command line is read (``kind``), and its help text."""
    return field(default=default, metadata={"kind": kind, "help": help})  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Source:
    """One site: a folder of CSV exports, a SQLAlchemy URL or an ODBC connection string."""

    site: str
    csv: Path | None = None
    url: str | None = None
    password_env: str | None = None
    odbc: str | None = None

    @property
    def kind(self) -> str:
        return "csv" if self.csv is not None else "sql"


@dataclass(frozen=True)
class Workload:
    stage: str = "configmgr"
    pilot_collections: tuple[str, ...] = ()


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")


@dataclass(frozen=True)
class MailSettings:
    """``[report.mail]``: where ``report --mail`` sends the weekly report (``smtplib``)."""

    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    starttls: bool = True
    user: str = ""
    password_env: str = ""  # the name of an environment variable holding the password


@dataclass(frozen=True)
class ReportSettings:
    """``[report]``: the weekly report's folder (default ``reports`` beside the config
    file), paper size of the PDF, and the optional mail."""

    out: Path | None = None
    paper: str = "A4"
    mail: MailSettings | None = None


def report_settings(raw: object, where: str, base: Path) -> ReportSettings:
    """The ``[report]`` table, validated (unknown keys, types, addresses)."""
    if raw is None:
        return ReportSettings()
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: report must be a table ([report])")
    extra = set(raw) - {"out", "paper", "mail"}
    if extra:
        raise SettingsError(
            f"{where}: report: unknown key {sorted(extra)[0]!r} (known: out, paper, mail)"
        )
    out = raw.get("out")
    if out is not None and (not isinstance(out, str) or not out.strip()):
        raise SettingsError(f"{where}: report.out must be a folder path")
    paper = raw.get("paper", "A4")
    if not isinstance(paper, str) or paper.lower() not in ("a4", "letter"):
        raise SettingsError(f"{where}: report.paper must be 'A4' or 'Letter'")
    mail = raw.get("mail")
    return ReportSettings(
        out=(base / out).resolve() if out else None,
        paper="A4" if paper.lower() == "a4" else "Letter",
        mail=None if mail is None else _mail_settings(mail, where),
    )


def _mail_settings(raw: object, where: str) -> MailSettings:
    here = f"{where}: report.mail"
    if not isinstance(raw, dict):
        raise SettingsError(f"{here} must be a table ([report.mail])")
    extra = set(raw) - {"host", "port", "starttls", "user", "password_env", "from", "to"}
    if extra:
        raise SettingsError(
            f"{here}: unknown key {sorted(extra)[0]!r} (known: host, port, "
            "starttls, user, password_env, from, to)"
        )
    host = raw.get("host")
    if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host.strip()):
        raise SettingsError(f'{here}: needs host = "smtp.example.com"')
    port = raw.get("port", 587)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise SettingsError(f"{here}: port must be a number from 1 to 65535")
    starttls = raw.get("starttls", True)
    if not isinstance(starttls, bool):
        raise SettingsError(f"{here}: starttls must be true or false")
    user = raw.get("user", "")
    if not isinstance(user, str) or any(ord(c) < 32 for c in user):
        raise SettingsError(f"{here}: user must be a string")
    password_env = raw.get("password_env", "")
    if not isinstance(password_env, str) or (password_env and not _ENV_NAME.match(password_env)):
        raise SettingsError(
            f"{here}: password_env must name an environment variable "
            "(e.g. COMANAGE_SMTP_PASSWORD), not hold the password"
        )
    if user and not password_env:
        raise SettingsError(
            f"{here}: user is set: give password_env too (the name of the "
            "environment variable holding the password)"
        )
    sender = raw.get("from")
    if not isinstance(sender, str) or not _ADDRESS.match(sender.strip()):
        raise SettingsError(
            f'{here}: from must be one e-mail address (from = "reports@example.com")'
        )
    to = raw.get("to")
    try:
        recipients = string_list(to) if to is not None else ()
    except TypeError:
        recipients = None
    if not recipients:
        raise SettingsError(
            f'{here}: to must list at least one e-mail address (to = ["it-team@example.com"])'
        )
    wrong = [address for address in recipients if not _ADDRESS.match(address)]
    if wrong:
        raise SettingsError(f"{here}: not an e-mail address in to: {wrong[0]!r}")
    return MailSettings(
        host=host.strip(),
        sender=sender.strip(),
        to=recipients,
        port=port,
        starttls=starttls,
        user=user,
        password_env=password_env,
    )


@dataclass(frozen=True)
class Settings:
    """Every setting, typed. The scalar settings below are also the command's options
    and environment variables (``SETTINGS``): a config file's value, overridden by
    ``COMANAGE_<NAME>``, overridden by the command line."""

    sources: tuple[Source, ...]
    workloads: dict[str, Workload] = field(default_factory=dict)
    collections: tuple[str, ...] = ()
    config_path: Path | None = None
    report: ReportSettings = field(default_factory=lambda: ReportSettings())
    intune: IntuneSettings | None = None
    organisation: str = setting(
        "",
        str,
        "Organisation name shown in the header and the report.",
    )
    as_of: str = setting(
        "",
        str,
        (
            "Pin the data's 'as of' time (ISO 8601). Empty: the time of each load. The bundled "
            "sample pins it so that its ages (days since last policy request) never drift."
        ),
    )
    refresh_minutes: int = setting(
        60,
        int,
        "Minutes between background data refreshes.",
    )
    stale_after_hours: int = setting(
        24,
        int,
        (
            "The header warns when the data on screen was loaded from the sources longer ago than"
            " this many hours (refreshes failing, or a cache nobody refreshes); 0: never."
        ),
    )
    host: str = setting(
        "127.0.0.1",
        str,
        "Address `serve` binds (loopback by default).",
    )
    port: int = setting(
        8050,
        int,
        "Port `serve` listens on.",
    )
    auth: str = setting(
        "none",
        str,
        (
            "Who may open the dashboard: 'none' (no sign-in: this computer only, unless "
            "allow_anonymous), 'users' (sign-in page, accounts managed with `comanage-dashboard "
            "user`) or 'proxy' (a trusted reverse proxy, e.g. IIS with Windows authentication, "
            "names the user in proxy_user_header)."
        ),
    )
    allow_anonymous: bool = setting(
        False,
        boolean,
        (
            "With auth = 'none': also answer requests from other computers (anyone who reaches "
            "the dashboard sees every device). Off: only this computer (loopback) is answered, "
            "whatever server runs the app; `serve --allow-anonymous` turns it on."
        ),
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        string_list,
        (
            "Host names (and addresses) the dashboard may be reached by, as typed in the browser,"
            " e.g. ['dashboard.example.com']; '*' allows any. Loopback names (localhost, "
            "127.0.0.1, [::1]) are always allowed. With auth = 'none' nothing else is answered "
            "unless listed (a defence against DNS rebinding); with sign-in, any host is answered "
            "until this is set."
        ),
    )
    users_file: str = setting(
        "",
        str,
        (
            "The accounts file for auth = 'users' (JSON, salted scrypt hashes, mode 0600). Empty:"
            " `users.json` beside the config file; a relative path is relative to the config "
            "file's folder."
        ),
    )
    secret_key: str = setting(
        "",
        str,
        (
            "Key that signs session cookies (auth = 'users'), at least 32 characters. Empty: a "
            "random key per process (sign-ins end at restart); required when shared_deployment is"
            " on or COMANAGE_WORKERS > 1."
        ),
    )
    session_hours: int = setting(
        12,
        int,
        "How long a sign-in lasts (auth = 'users').",
    )
    secure_cookies: bool = setting(
        False,
        boolean,
        (
            "Mark the session cookie Secure (send it over HTTPS only): turn on when users reach "
            "the dashboard through HTTPS."
        ),
    )
    shared_deployment: bool = setting(
        False,
        boolean,
        (
            "Several processes or hosts serve the same dashboard: secret_key becomes mandatory so"
            " that every process accepts every session."
        ),
    )
    proxy_user_header: str = setting(
        "",
        str,
        (
            "For auth = 'proxy': the request header holding the signed-in user's name, set by the"
            " proxy (e.g. X-Remote-User)."
        ),
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        string_list,
        (
            "For auth = 'proxy': addresses or networks (CIDR) of the reverse proxies; the user "
            "header is believed only from these, every other client is refused. For auth = "
            "'users' behind a TLS proxy: requests from these addresses are attributed to the "
            "client in their X-Forwarded-For header (for the sign-in throttle and the log)."
        ),
    )
    status_labels: str = setting(
        "entra",
        str,
        (
            "Wording of the enrollment-status labels: 'entra' (Microsoft Entra hybrid joined) or "
            "'azure' (the older hybrid Azure AD-joined)."
        ),
    )
    client_inactive_days: int = setting(
        14,
        int,
        "A last policy request older than this many days counts as an inactive client.",
    )
    stuck_days: int = setting(
        14,
        int,
        (
            "A device scheduled, enrolling or pending user sign in for more than this many days "
            "(according to history) is flagged 'Enrollment stuck'."
        ),
    )
    history_url: str = setting(
        "",
        str,
        (
            "Where snapshots over time are kept: a SQLite file path or any SQLAlchemy URL (e.g. "
            "postgresql+psycopg://host/db). Empty: `history.sqlite` beside the config file. "
            "'off': no history."
        ),
    )
    history_days: int = setting(
        3650,
        int,
        "Days of daily aggregates (trends, week-over-week figures) kept in history.",
    )
    device_history_days: int = setting(
        120,
        int,
        "Days of per-device states (what changed, time in state) kept in history.",
    )
    query_timeout_seconds: int = setting(
        300,
        int,
        "Time limit for each SQL query.",
    )
    cache_dir: str = setting(
        "",
        str,
        (
            "Folder of the warm-start cache (Parquet) shared by restarts and workers. Empty: "
            "`.comanage-cache` beside the config file."
        ),
    )
    shared_cache: str = setting(
        "",
        str,
        (
            "Where the worker processes share computed summaries and trends (Flask-Caching). "
            "Empty: files in the `flask-cache` folder of the warm-start cache (mode 0700); a "
            "`redis://` or `rediss://` URL (password in the URL, never logged; needs the redis "
            "package): a Redis server; 'off': each process computes its own."
        ),
    )
    browser: str = setting(
        "",
        str,
        (
            "The Chromium, Chrome or Microsoft Edge that `report` drives headless (a path, or a "
            "name on the PATH). Empty: the usual install places (chromium, chromium-browser, "
            "google-chrome, microsoft-edge; on Windows Edge, then Chrome)."
        ),
    )

    @property
    def bundled_sample(self) -> bool:
        """Whether this is the bundled sample's config, which is read and never written."""
        return (
            self.config_path is not None
            and self.config_path.resolve().parent == SAMPLE_DIR.resolve()
        )

    @property
    def work_folder(self) -> Path:
        """The folder "beside the config file" where the warm-start cache, reports and
        accounts go by default: the config's folder (the current folder without one), for
        the bundled sample ``user_folder()``."""
        if self.bundled_sample:
            return user_folder()
        return self.config_path.parent if self.config_path is not None else Path.cwd()

    def workload(self, key: str) -> Workload:
        return self.workloads.get(key, Workload())

    @property
    def named_collections(self) -> tuple[str, ...]:
        """Every collection the configuration names: filters first, then pilot collections."""
        seen: dict[str, None] = dict.fromkeys(self.collections)
        for workload in self.workloads.values():
            seen.update(dict.fromkeys(workload.pilot_collections))
        return tuple(seen)

    def with_values(self, **overrides: object) -> Settings:
        """These settings with ``overrides`` (None: unchanged) checked and applied."""
        values = {
            name: _coerce(_BY_NAME[name], value, "command line")
            for name, value in overrides.items()
            if value is not None
        }
        return replace(self, **values)  # type: ignore[arg-type]


# The scalar settings, in declaration order: one ``Setting`` per field declared with
# ``setting`` (the command's options, the environment variables and the README's table).
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, f.default, f.metadata["kind"], f.metadata["help"])
    for f in fields(Settings)
    if "help" in f.metadata
)
_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, value: object, where: str) -> object:
    try:
        if setting.kind is int and isinstance(value, bool):
            raise ValueError
        return setting.kind(value)
    except (TypeError, ValueError):
        raise SettingsError(
            f"{where}: {setting.name} must be {setting.kind.__name__}, got {value!r}"
        ) from None


def _as_tuple(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SettingsError(f"{where} must be a string or a list of strings")


def load_settings(
    path: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read a TOML config (or the sample's) and apply environment overrides."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = environ.get("COMANAGE_CONFIG") or SAMPLE_CONFIG
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: {error}") from None
    except OSError as error:
        raise SettingsError(f"{path}: {error.strerror}") from None
    return settings_from_dict(raw, path, environ)


def settings_from_dict(
    raw: dict, path: Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    environ = {} if environ is None else environ
    where = str(path) if path else "config"
    base = path.parent if path else Path.cwd()
    known = set(_BY_NAME) | {"sources", "workloads", "collections", "report", "intune"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(f"{where}: unknown setting {unknown[0]!r}")

    values: dict[str, object] = {}
    for setting in SETTINGS:
        if setting.name in raw:
            values[setting.name] = _coerce(setting, raw[setting.name], where)
        if setting.env in environ:
            values[setting.name] = _coerce(setting, environ[setting.env], setting.env)
    if values.get("status_labels", "entra") not in ("entra", "azure"):
        raise SettingsError(f"{where}: status_labels must be 'entra' or 'azure'")
    shared = str(values.get("shared_cache", "")).strip().lower()
    if shared not in ("", "off") and not shared.startswith(("redis://", "rediss://")):
        raise SettingsError(
            f"{where}: shared_cache must be empty (files in the cache "
            "folder), 'off' or a redis:// or rediss:// URL"
        )  # not echoed

    sources = []
    for index, entry in enumerate(raw.get("sources", [])):
        here = f"{where}: sources[{index}]"
        site = entry.get("site")
        if not isinstance(site, str) or not site.strip():
            raise SettingsError(f'{here}: needs a site label (site = "PS1")')
        csv, url, odbc = entry.get("csv"), entry.get("url"), entry.get("odbc")
        if sum(value is not None for value in (csv, url, odbc)) != 1:
            raise SettingsError(
                f'{here}: give exactly one of csv = "folder", url = "..." '
                'or odbc = "Driver={...};..."'
            )
        extra = set(entry) - {"site", "csv", "url", "odbc", "password_env"}
        if extra:
            raise SettingsError(f"{here}: unknown key {sorted(extra)[0]!r}")
        password_env = entry.get("password_env")
        if password_env is not None and (
            not isinstance(password_env, str) or not _ENV_NAME.match(password_env)
        ):
            raise SettingsError(
                f"{here}: password_env must name an environment variable "
                "(e.g. COMANAGE_PS1_PASSWORD), not hold the password"
            )
        if odbc is not None:
            odbc = _checked_odbc(odbc, here, base)
        sources.append(
            Source(
                site=site.strip(),
                csv=(base / csv).resolve() if csv is not None else None,
                url=_resolve_sqlite(url, base) if url is not None else None,
                password_env=password_env,
                odbc=odbc,
            )
        )
    if not sources:
        raise SettingsError(f"{where}: no [[sources]] configured")
    sites = [s.site for s in sources]
    if len(set(sites)) != len(sites):
        raise SettingsError(
            f"{where}: two sources share the site label "
            f"{next(s for s in sites if sites.count(s) > 1)!r}"
        )

    workloads = {}
    for key, entry in (raw.get("workloads") or {}).items():
        here = f"{where}: workloads.{key}"
        if key not in WORKLOADS:
            raise SettingsError(f"{here}: unknown workload (known: {', '.join(WORKLOADS)})")
        stage = entry.get("stage", "configmgr")
        if stage not in STAGES:
            raise SettingsError(f"{here}: stage must be one of {', '.join(STAGES)}")
        pilots = _as_tuple(entry.get("pilot_collection"), f"{here}.pilot_collection")
        if stage == "pilot" and not pilots:
            raise SettingsError(f"{here}: stage 'pilot' needs pilot_collection")
        workloads[key] = Workload(stage=stage, pilot_collections=pilots)

    collections = _as_tuple(
        (raw.get("collections") or {}).get("filter"), f"{where}: collections.filter"
    )
    try:
        intune = intune_settings(raw.get("intune"), where, base)
    except IntuneSettingsError as error:
        raise SettingsError(str(error)) from None
    return Settings(
        sources=tuple(sources),
        intune=intune,
        workloads=workloads,
        collections=collections,
        config_path=path,
        report=report_settings(raw.get("report"), where, base),
        **values,  # type: ignore[arg-type]
    )


def _resolve_sqlite(url: str, base: Path) -> str:
    """Relative SQLite paths in a config file are relative to that file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
        rest = url[len(prefix) :]
        if not rest.startswith(":memory:"):
            return prefix + str((base / rest).resolve())
    return url


def _checked_odbc(odbc: object, where: str, base: Path) -> str:
    """An ODBC connection string names a driver or a DSN; a SQLite driver's relative
    ``Database`` path is relative to the config file's folder, like a sqlite URL's."""
    if not isinstance(odbc, str) or not odbc.strip() or any(c in odbc for c in "\r\n"):
        raise SettingsError(
            f"{where}: odbc must be one connection string "
            '(odbc = "Driver={ODBC Driver 18 for SQL Server};Server=...")'
        )
    if odbc_value(odbc, "Driver", "DSN", "FileDSN") is None:
        raise SettingsError(f"{where}: odbc must name a Driver={{...}} or a DSN=")
    driver = odbc_value(odbc, "Driver") or ""
    database = odbc_value(odbc, "Database")
    if (
        "sqlite" in driver.lower()
        and database
        and database != ":memory:"
        and not Path(database).expanduser().is_absolute()
    ):
        parts = [text for key, _, text in odbc_pairs(odbc) if key.lower() != "database"]
        path = str((base / database).resolve()).replace("}", "}}")
        odbc = ";".join([*parts, f"Database={{{path}}}"])
    return odbc.strip()

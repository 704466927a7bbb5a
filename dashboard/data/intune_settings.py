"""``[intune]`` in the config file: where Intune's managed-device records come from.

Either an export (``file``, CSV or JSON, relative to the config file) or Microsoft Graph with
an app registration (``tenant_id``, ``client_id`` and a client secret named by
``client_secret_env`` or a certificate PEM). The secret itself never sits in the TOML: a config
file is copied, mailed and committed far more often than an environment is. The secret and the
certificate are read at each Intune load, not here: a missing one then fails the Intune side
alone (the ConfigMgr figures keep serving, with the error shown), and a rotated one is picked up
without a restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

GRAPH_URL = "https://graph.microsoft.com"
AUTHORITY_URL = "https://login.microsoftonline.com"
_KEYS = (
    "file",
    "tenant_id",
    "client_id",
    "client_secret_env",
    "certificate",
    "stale_days",
    "timeout_seconds",
    "graph_url",
    "authority_url",
    "ca_bundle",
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A tenant is a GUID or a verified domain name (contoso.onmicrosoft.com).
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,253}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class IntuneError(Exception):
    """The Intune source cannot be read at all: one line, naming the source, no secret.
    (Here, beside the settings, so that the file reader and the Graph client share it.)"""


class IntuneSettingsError(ValueError):
    """An ``[intune]`` table a user must fix (the caller turns it into a SettingsError)."""


@dataclass(frozen=True)
class IntuneSettings:
    """The validated ``[intune]`` table. ``file`` is absolute (resolved against the config
    file's folder); without it, the Graph fields are set."""

    file: Path | None = None
    tenant_id: str = ""
    client_id: str = ""
    client_secret_env: str = ""  # the NAME of the environment variable holding the secret
    certificate: Path | None = None  # PEM: private key and certificate
    stale_days: int = 7
    timeout_seconds: int = 300
    graph_url: str = GRAPH_URL
    authority_url: str = AUTHORITY_URL
    ca_bundle: Path | None = None  # CA certificates to trust instead of the system's

    @property
    def kind(self) -> str:
        return "file" if self.file is not None else "graph"

    @property
    def shown(self) -> str:
        """What the pages call this source."""
        return self.file.name if self.file is not None else "Microsoft Graph"


def _text(raw: dict, key: str, here: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise IntuneSettingsError(f"{here}: {key} must be a string")
    return value.strip()


def _whole(raw: dict, key: str, default: int, low: int, here: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise IntuneSettingsError(f"{here}: {key} must be a whole number of at least {low}")
    return value


def _url(raw: dict, key: str, default: str, here: str) -> str:
    value = _text(raw, key, here) or default
    if not re.match(r"^https?://[^\s/]+", value):
        raise IntuneSettingsError(f"{here}: {key} must be an http(s) URL")
    return value.rstrip("/")


def intune_settings(raw: object, where: str, base: Path) -> IntuneSettings | None:
    """The ``[intune]`` table validated, or None when the config has none."""
    if raw is None:
        return None
    here = f"{where}: intune"
    if not isinstance(raw, dict):
        raise IntuneSettingsError(f"{here} must be a table ([intune])")
    if "client_secret" in raw:
        raise IntuneSettingsError(
            f"{here}: client_secret is not read from the config file; put the secret in an "
            'environment variable and name it: client_secret_env = "COMANAGE_INTUNE_SECRET"'
        )  # the value is never echoed
    extra = sorted(set(raw) - set(_KEYS))
    if extra:
        raise IntuneSettingsError(f"{here}: unknown key {extra[0]!r} (known: {', '.join(_KEYS)})")
    file = _text(raw, "file", here)
    tenant = _text(raw, "tenant_id", here)
    client = _text(raw, "client_id", here)
    secret_env = _text(raw, "client_secret_env", here)
    certificate = _text(raw, "certificate", here)
    ca_bundle = _text(raw, "ca_bundle", here)
    common = {
        "stale_days": _whole(raw, "stale_days", 7, 0, here),
        "timeout_seconds": _whole(raw, "timeout_seconds", 300, 1, here),
        "graph_url": _url(raw, "graph_url", GRAPH_URL, here),
        "authority_url": _url(raw, "authority_url", AUTHORITY_URL, here),
        "ca_bundle": (base / ca_bundle).resolve() if ca_bundle else None,
    }
    graph_keys = [
        k for k in ("tenant_id", "client_id", "client_secret_env", "certificate") if k in raw
    ]
    if file:
        if graph_keys:
            raise IntuneSettingsError(
                f"{here}: give either file or tenant_id/client_id, not both "
                f"(found file and {graph_keys[0]})"
            )
        if Path(file).suffix.lower() not in (".csv", ".json"):
            raise IntuneSettingsError(f"{here}: file must be a .csv or a .json export ({file})")
        return IntuneSettings(file=(base / file).resolve(), **common)
    if not tenant or not client:
        raise IntuneSettingsError(
            f'{here}: needs file = "intune.csv", or tenant_id and client_id (Microsoft Graph)'
        )
    if not _TENANT.match(tenant):
        raise IntuneSettingsError(
            f"{here}: tenant_id must be the directory (tenant) ID or a domain name"
        )
    if not _GUID.match(client):
        raise IntuneSettingsError(f"{here}: client_id must be the application (client) ID, a GUID")
    if bool(secret_env) == bool(certificate):
        raise IntuneSettingsError(
            f"{here}: give exactly one of client_secret_env (the name of an environment "
            "variable holding the secret) or certificate (a PEM file)"
        )
    if secret_env and not _ENV_NAME.match(secret_env):
        raise IntuneSettingsError(
            f"{here}: client_secret_env must name an environment variable "
            "(e.g. COMANAGE_INTUNE_SECRET), not hold the secret"
        )  # not echoed: it may be the secret itself
    return IntuneSettings(
        tenant_id=tenant,
        client_id=client.lower(),
        client_secret_env=secret_env,
        certificate=(base / certificate).resolve() if certificate else None,
        **common,
    )

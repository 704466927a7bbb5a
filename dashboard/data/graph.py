"""Intune's managed-device records from Microsoft Graph, signed in as the application.

MSAL's ``ConfidentialClientApplication`` gets an app-only token (client credentials: a
certificate, or a secret read from the environment variable the settings name); ``requests``
then reads ``GET /v1.0/deviceManagement/managedDevices`` with ``$select`` of the columns the
dashboard uses, following every ``@odata.nextLink``. Graph's documentation lists no ``$filter``
support for this list, so every record is read and non-Windows records are counted and left out
locally (the reader does it, for files and Graph alike).

Throttling (429) and "service unavailable" (503) are answered by waiting ``Retry-After``
(capped), and the waits count against one overall time limit (``timeout_seconds``). Every
failure becomes one line naming what to fix; the token and the secret never appear in an error
or a log line (each message is scrubbed of both before it leaves this module), and the token is
sent to the configured Graph host only, never to a host a ``nextLink`` names.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import requests

from .intune_settings import AUTHORITY_URL, IntuneSettings
from .intune_source import IntuneError

log = logging.getLogger(__name__)

SELECT = (
    "id,deviceName,azureADDeviceId,managementAgent,complianceState,lastSyncDateTime,"
    "enrolledDateTime,operatingSystem,osVersion,userPrincipalName"
)
PATH = "/v1.0/deviceManagement/managedDevices"
MAX_WAIT_SECONDS = 60  # longest single Retry-After honoured; longer ones wait this long
DEFAULT_WAIT_SECONDS = 5  # a 429/503 without Retry-After
SOURCE = "Microsoft Graph"
# Entra ID's AADSTS codes a user can act on, with what to fix.
SIGN_IN_ERRORS: dict[int, str] = {
    90002: "tenant {tenant} not found: check tenant_id (the directory ID or a verified domain)",
    700016: (
        "application {client} not found in tenant {tenant}: check client_id, and that the "
        "app is registered in this tenant"
    ),
    7000215: "invalid client secret: put the secret's value (not its ID) in {secret_env}",
    7000222: "the client secret has expired: create a new one and put it in {secret_env}",
    700027: (
        "the certificate is not the one registered: upload its public part to the app "
        "registration (Certificates & secrets)"
    ),
    65001: (
        "admin consent missing: grant admin consent for DeviceManagementManagedDevices.Read.All "
        "(application permission) in the app registration"
    ),
    7000112: "the application is disabled in tenant {tenant}",
}
_AADSTS = re.compile(r"AADSTS(\d+)")


class _Session(requests.Session):
    """A session that trusts ``ca_bundle`` when one is configured: set per request, since
    requests lets ``REQUESTS_CA_BUNDLE`` override a session's own ``verify``."""

    def __init__(self, ca_bundle: str | None):
        super().__init__()
        self.ca_bundle = ca_bundle

    def request(self, method, url, *args, **kwargs):
        if self.ca_bundle is not None:
            kwargs["verify"] = self.ca_bundle
        return super().request(method, url, *args, **kwargs)


class GraphError(IntuneError):
    """Graph could not be read: one line, with what to fix; no token, no secret."""


def _scrub(text: str, secrets: list[str]) -> str:
    """``text`` without any of ``secrets`` and on one line."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())


def _client_credential(settings: IntuneSettings, environ: Mapping[str, str]) -> str | dict:
    """The client secret from the environment, or the certificate's private key and
    thumbprint (SHA-1 of the certificate, what Entra ID identifies it by)."""
    if settings.client_secret_env:
        name = settings.client_secret_env
        if name not in environ:
            raise GraphError(
                f"{SOURCE}: environment variable {name} is not set (client_secret_env names "
                "it: set it to the app registration's client secret)"
            )
        secret = environ[name]
        if not secret.strip():
            raise GraphError(f"{SOURCE}: environment variable {name} is empty (client_secret_env)")
        return secret
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    path = settings.certificate
    try:
        data = path.read_bytes()
    except OSError as error:
        raise GraphError(
            f"{SOURCE}: cannot read certificate {path} ({error.strerror or error})"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise GraphError(
            f"{SOURCE}: certificate {path} holds no unencrypted PEM private key (export the "
            "key without a password, with the certificate, into one PEM file)"
        ) from None
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise GraphError(
            f"{SOURCE}: certificate {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ) from None
    der = certificate.public_bytes(serialization.Encoding.DER)
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {"private_key": pem_key, "thumbprint": hashlib.sha1(der).hexdigest()}


def _sign_in_error(result: dict, settings: IntuneSettings) -> str:
    """One line for MSAL's error answer: the AADSTS code and what to fix."""
    codes = [int(c) for c in result.get("error_codes") or [] if str(c).isdigit()]
    description = str(result.get("error_description") or "")
    codes += [int(c) for c in _AADSTS.findall(description)]
    for code in codes:
        advice = SIGN_IN_ERRORS.get(code)
        if advice:
            return f"sign-in failed (AADSTS{code}): " + advice.format(
                tenant=settings.tenant_id,
                client=settings.client_id,
                secret_env=settings.client_secret_env or "client_secret_env",
            )
    # Entra ID's description ends with trace and correlation IDs: keep its first sentence.
    first = description.split("\r\n")[0].split("\n")[0].split(". Trace ID")[0]
    return f"sign-in failed ({result.get('error', 'error')}: {first[:300] or 'no description'})"


def _token(
    settings: IntuneSettings, session: requests.Session, credential, remaining: float
) -> str:
    import msal

    custom = settings.authority_url.rstrip("/") != AUTHORITY_URL
    try:
        app = msal.ConfidentialClientApplication(
            settings.client_id,
            client_credential=credential,
            authority=f"{settings.authority_url}/{settings.tenant_id}",
            http_client=session,
            timeout=max(1.0, remaining),
            # A configured sign-in address (tests, sovereign clouds) is taken as given.
            validate_authority=not custom,
            instance_discovery=False if custom else None,
        )
        result = app.acquire_token_for_client(scopes=[f"{settings.graph_url}/.default"])
    except ValueError:
        # MSAL raises this when the tenant's discovery document is refused (AADSTS90002).
        raise GraphError(
            f"{SOURCE}: sign-in failed (AADSTS90002): "
            + SIGN_IN_ERRORS[90002].format(tenant=settings.tenant_id)
        ) from None
    if not result or "access_token" not in result:
        raise GraphError(f"{SOURCE}: {_sign_in_error(result or {}, settings)}")
    return result["access_token"]


def _graph_message(response: requests.Response) -> str:
    """``code: message`` from Graph's error body ({"error": {"code", "message"}})."""
    try:
        error = response.json().get("error") or {}
        text = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        text = ""
    return text[:300] or response.reason or "no detail"


def _retry_after(response: requests.Response) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        seconds = DEFAULT_WAIT_SECONDS  # Graph sends seconds; an HTTP date is not expected
    return min(max(seconds, 0.0), MAX_WAIT_SECONDS)


def fetch_managed_devices(
    settings: IntuneSettings,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict]:
    """Every managed-device record (all platforms) as Graph returns them; raises
    ``GraphError`` (one line, nothing secret) when they cannot all be read in time."""
    environ = os.environ if environ is None else environ
    deadline = clock() + settings.timeout_seconds
    secrets: list[str] = []
    session = _Session(str(settings.ca_bundle) if settings.ca_bundle else None)
    pages = records = 0

    def timed_out() -> GraphError:
        return GraphError(
            f"{SOURCE}: no complete answer within {settings.timeout_seconds} s "
            f"(timeout_seconds; {pages} pages, {records} records read by then)"
        )

    try:
        credential = _client_credential(settings, environ)
        if isinstance(credential, str):
            secrets.append(credential)
        token = _token(settings, session, credential, deadline - clock())
        secrets.append(token)
        origin = urlsplit(settings.graph_url)
        # No $top: the list's documentation names no paging options; Graph picks the page size.
        url: str | None = f"{settings.graph_url}{PATH}?$select={SELECT}"
        rows: list[dict] = []
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        while url is not None:
            remaining = deadline - clock()
            if remaining <= 0:
                raise timed_out()
            response = session.get(url, headers=headers, timeout=remaining, allow_redirects=False)
            if response.status_code in (429, 503):
                wait = _retry_after(response)
                log.info("Microsoft Graph answered %s: waiting %.0f s", response.status_code, wait)
                if clock() + wait >= deadline:
                    raise timed_out()
                sleep(wait)
                continue
            if response.status_code == 403:
                raise GraphError(
                    f"{SOURCE}: permission missing (403 {_graph_message(response)}): give the "
                    "app registration the application permission "
                    "DeviceManagementManagedDevices.Read.All, with admin consent"
                )
            if response.status_code == 401:
                raise GraphError(
                    f"{SOURCE}: the token was refused (401 {_graph_message(response)})"
                )
            if response.status_code != 200:
                raise GraphError(
                    f"{SOURCE}: answered {response.status_code} ({_graph_message(response)})"
                )
            try:
                body = response.json()
                page = body["value"]
                if not isinstance(page, list):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                raise GraphError(f"{SOURCE}: the answer is not a list of records") from None
            rows.extend(page)
            pages, records = pages + 1, records + len(page)
            url = body.get("@odata.nextLink")
            if url is not None:
                link = urlsplit(url)
                if (link.scheme, link.netloc) != (origin.scheme, origin.netloc):
                    raise GraphError(
                        f"{SOURCE}: a next-page link points to another host "
                        f"({link.netloc}); not followed"
                    )
        log.info("Microsoft Graph: %d records in %d pages", records, pages)
        return rows
    except requests.Timeout:
        raise timed_out() from None
    except requests.exceptions.SSLError as error:
        host = urlsplit(getattr(error.request, "url", "") or settings.graph_url).netloc
        raise GraphError(
            f"{SOURCE}: TLS certificate of {host} not trusted (a TLS-inspecting proxy? "
            "ca_bundle names the CA certificates to trust)"
        ) from None
    except requests.ConnectionError as error:
        host = urlsplit(getattr(error.request, "url", "") or settings.graph_url).netloc
        raise GraphError(f"{SOURCE}: cannot connect to {host}") from None
    except GraphError as error:
        raise GraphError(_scrub(str(error), secrets)) from None
    finally:
        session.close()


__all__ = ["SELECT", "GraphError", "fetch_managed_devices"]

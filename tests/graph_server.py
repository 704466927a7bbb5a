"""A local stand-in for Microsoft Graph and Entra ID's token endpoint, on loopback over HTTPS.

MSAL accepts only an https authority, so the server has a throw-away self-signed certificate
for 127.0.0.1 (``ca_file`` is what the client is told to trust). It speaks what the Graph
client relies on: the tenant's OpenID discovery document, the client-credentials token request
(client secret, or a certificate's signed assertion, checked against the certificate), and
``/v1.0/deviceManagement/managedDevices`` in pages linked by ``@odata.nextLink``; and what can
go wrong, in Entra ID's and Graph's own shapes: an unknown tenant (AADSTS90002), an unknown
application (AADSTS700016), a wrong secret (AADSTS7000215), consent missing (AADSTS65001), a
403 from Graph, a 429 or 503 with ``Retry-After``, and a slow answer.
"""

from __future__ import annotations

import datetime
import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-aaaaaaaaaaaa"
SECRET = "s3cr3t~Graph-Test-Value_0123456789"  # what the tests must never see again


def self_signed(folder: Path, name: str, ip: str | None = None) -> tuple[Path, Path]:
    """(PEM with key and certificate, PEM with the certificate alone) for ``name``."""
    import ipaddress

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        ).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    certificate = builder.sign(key, hashes.SHA256())
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    both, alone = folder / f"{name}.pem", folder / f"{name}.crt"
    both.write_bytes(key_pem + cert_pem)
    alone.write_bytes(cert_pem)
    return both, alone


class GraphServer:
    """The server and its behaviour, set by the tests before a request:

    - ``records``: what the managed-device list holds; ``page_size`` per page;
    - ``tenants``, ``clients``: the tenant and the applications it knows;
    - ``app_certificate``: the certificate (PEM) whose signed assertions sign in ``CLIENT``;
    - ``consented``: False answers the token request with AADSTS65001;
    - ``forbidden``: Graph answers 403 (the permission is missing);
    - ``throttle``: {page number: (status, Retry-After or None)}, answered once per page;
    - ``slow_seconds``: every Graph page waits this long before answering;
    - ``next_host``: the host nextLinks name (default: this server).
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.server_pem, self.ca_file = self_signed(self.folder, "graph-server", "127.0.0.1")
        self.reset()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_pem)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def reset(self) -> None:
        """Every behaviour back to a healthy tenant with no records (one server per module)."""
        self.records: list[dict] = []
        self.page_size = 3
        self.tenants = {TENANT}
        self.clients = {CLIENT}
        self.app_certificate: bytes | None = None
        self.consented = True
        self.forbidden = False
        self.throttle: dict[int, tuple[int, str | None]] = {}
        self.slow_seconds = 0.0
        self.next_host: str | None = None
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers)
        self.bodies: list[dict] = []  # token request forms

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> GraphServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def graph_requests(self) -> list[str]:
        return [path for method, path, _ in self.requests if path.startswith("/v1.0/")]

    # -- answers ---------------------------------------------------------------------------

    def discovery(self, tenant: str) -> tuple[int, dict]:
        if tenant not in self.tenants:
            return 400, _aadsts(
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID",
            )
        base = f"{self.url}/{tenant}"
        return 200, {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "token"],
        }

    def token(self, tenant: str, form: dict) -> tuple[int, dict]:
        self.bodies.append(form)
        client = form.get("client_id", "")
        if tenant not in self.tenants:
            return 400, _aadsts("invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        if client not in self.clients:
            return 400, _aadsts(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client}' was not found in the directory "
                f"'{tenant}'.",
            )
        if "client_secret" in form:
            if form["client_secret"] != SECRET:
                return 401, _aadsts(
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client secret ID",
                )
        elif not self._assertion_ok(form.get("client_assertion", ""), tenant):
            return 401, _aadsts(
                "invalid_client",
                700027,
                "Client assertion failed signature validation.",
            )
        if not self.consented:
            return 400, _aadsts(
                "invalid_grant",
                65001,
                "The user or administrator has not consented to use the application.",
            )
        token = "eyJ0eXAi." + uuid.uuid4().hex + uuid.uuid4().hex
        self.tokens.add(token)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token}

    def _assertion_ok(self, assertion: str, tenant: str) -> bool:
        import jwt  # PyJWT, an MSAL dependency

        if not assertion or self.app_certificate is None:
            return False
        certificate = x509.load_pem_x509_certificate(self.app_certificate)
        try:
            claims = jwt.decode(
                assertion,
                certificate.public_key(),
                algorithms=["RS256", "PS256"],
                audience=f"{self.url}/{tenant}/oauth2/v2.0/token",
            )
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == CLIENT

    def page(self, query: dict, headers: dict) -> tuple[int, dict, dict]:
        """(status, body, extra headers) of one managed-device page."""
        if self.slow_seconds:
            time.sleep(self.slow_seconds)
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return 401, _graph_error("InvalidAuthenticationToken", "Access token is empty."), {}
        if self.forbidden:
            return (
                403,
                _graph_error(
                    "Forbidden",
                    "Application is not authorized to perform this operation. Application "
                    "must have one of the following scopes: "
                    "DeviceManagementManagedDevices.Read.All",
                ),
                {},
            )
        number = int(query.get("$skiptoken", ["0"])[0])
        if number in self.throttle:
            status, after = self.throttle.pop(number)
            extra = {"Retry-After": after} if after is not None else {}
            return status, _graph_error("TooManyRequests", "Too many requests."), extra
        fields = query.get("$select", [""])[0].split(",")
        start = number * self.page_size
        chunk = self.records[start : start + self.page_size]
        body: dict = {
            "@odata.context": f"{self.url}/v1.0/$metadata#deviceManagement/managedDevices",
            "value": [{k: v for k, v in r.items() if k in fields} for r in chunk],
        }
        if start + self.page_size < len(self.records):
            host = self.next_host or self.url
            body["@odata.nextLink"] = (
                f"{host}/v1.0/deviceManagement/managedDevices?$select={','.join(fields)}"
                f"&$skiptoken={number + 1}"
            )
        return 200, body, {}


def _aadsts(error: str, code: int, text: str) -> dict:
    """Entra ID's error answer: the code leads the description, trace IDs follow."""
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {text} Trace ID: {uuid.uuid4()} Correlation ID: "
        f"{uuid.uuid4()} Timestamp: 2026-11-23 07:00:00Z",
        "error_codes": [code],
        "timestamp": "2026-11-23 07:00:00Z",
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }


def _graph_error(code: str, message: str) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2026-11-23T07:00:00", "request-id": str(uuid.uuid4())},
        }
    }


def _handler(server: GraphServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: pytest shows failures, not access logs
            pass

        def _send(self, status: int, body: dict, extra: dict | None = None) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # the client gave up (the timeout test)

        def do_GET(self):
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            server.requests.append(("GET", parts.path, headers))
            segments = parts.path.strip("/").split("/")
            if parts.path.endswith("/v2.0/.well-known/openid-configuration"):
                self._send(*server.discovery(segments[0]))
            elif parts.path == "/v1.0/deviceManagement/managedDevices":
                status, body, extra = server.page(parse_qs(parts.query), headers)
                self._send(status, body, extra)
            else:
                self._send(404, _graph_error("NotFound", "no such resource"))

        def do_POST(self):
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            server.requests.append(("POST", parts.path, headers))
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            segments = parts.path.strip("/").split("/")
            if parts.path.endswith("/oauth2/v2.0/token"):
                self._send(*server.token(segments[0], form))
            else:
                self._send(404, _graph_error("NotFound", "no such resource"))

    return Handler

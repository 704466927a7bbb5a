"""Web security for every response: headers, a strict Content-Security-Policy, a health check.

``install(app, settings)`` adds, on ``app.server`` (Flask):

- a Content-Security-Policy that allows scripts only from this server plus the inline
  scripts Dash itself renders, by hash (``app.csp_hashes()``, computed once every callback
  is registered, on the first response); no ``'unsafe-eval'``, no CDN, no frames, no plugins;
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``,
  ``X-Frame-Options: DENY``, ``Cross-Origin-Opener-Policy: same-origin`` and
  ``Cross-Origin-Resource-Policy: same-origin``;
- ``Cache-Control: no-store`` on everything that carries data (pages, callbacks, layout,
  exports, the login page); the versioned static files Dash serves keep their own caching;
- a same-origin check on state-changing requests: a POST that the browser marks as sent
  from another site (``Sec-Fetch-Site``) is refused (403) before any route runs;
- ``Strict-Transport-Security`` when ``secure_cookies`` is on (users come through HTTPS);
- ``/healthz``, which answers ``ok`` and nothing else (no version, no data, no auth).

Styles: plotly.js and AG Grid inject ``<style>`` elements at run time (AG Grid's theming,
plotly's modebar and hover styles), so ``style-src`` keeps ``'unsafe-inline'``; CSS cannot run
script, and every other directive stays strict.
"""

from __future__ import annotations

from flask import Response, request

HEALTH_PATH = "/healthz"
# Paths whose responses are versioned static files (safe to cache); everything else is data.
STATIC_PREFIXES = ("/_dash-component-suites/", "/assets/")
HSTS = "max-age=31536000"  # one year; no includeSubDomains: other hosts are not ours to pin
STYLE_INLINE = True  # plotly.js and AG Grid inject <style> elements (see the module doc)

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def content_security_policy(script_hashes: list[str] | tuple[str, ...] = ()) -> str:
    """The policy text: ``script-src 'self'`` plus the given ``'sha256-...'`` hashes."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'"] + (["'unsafe-inline'"] if STYLE_INLINE else []),
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "frame-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class _Policy:
    """The app's CSP, computed once all inline scripts are known (first response)."""

    def __init__(self, app):
        self.app = app
        self._known = -1
        self._text = ""

    def text(self) -> str:
        inline = len(getattr(self.app, "_inline_scripts", ()))
        if inline != self._known or not self._text:
            hashes = self.app.csp_hashes()  # also takes in Dash's global clientside scripts
            self._known = len(getattr(self.app, "_inline_scripts", ()))
            self._text = content_security_policy(hashes)
        return self._text


def cross_site_post() -> bool:
    """A state-changing request sent from another site's page.

    Decided by ``Sec-Fetch-Site``, which the browser computes itself (it cannot be set by a
    page, and a reverse proxy rewriting ``Host`` does not disturb it): ``cross-site`` and
    ``same-site`` (another host of the same domain) are refused. Clients that send no such
    header (scripts, old browsers) are not refused here; the login form has its own token.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    return request.headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site")


def install(app, settings=None) -> None:
    """Security headers, the same-origin check and ``/healthz`` on ``app.server``."""
    server = app.server
    policy = _Policy(app)

    @server.route(HEALTH_PATH)
    def healthz():
        return Response("ok", mimetype="text/plain")

    @server.before_request
    def _refuse_cross_site():
        if cross_site_post():
            return Response("Cross-site request refused.\n", status=403, mimetype="text/plain")
        return None

    # Behind HTTPS (secure_cookies says so) browsers must never fall back to plain HTTP.
    hsts = bool(getattr(settings, "secure_cookies", False))

    @server.after_request
    def _headers(response):
        for name, value in BASE_HEADERS.items():
            response.headers.setdefault(name, value)
        if hsts:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        response.headers["Content-Security-Policy"] = policy.text()
        if not request.path.startswith(STATIC_PREFIXES):
            response.headers["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
            response.headers.pop("ETag", None)
        return response

    app.csp_policy = policy  # for tests

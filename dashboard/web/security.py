"""Security headers on every response, and Secure cookies on every HTTPS response.

- `Content-Security-Policy`: scripts, styles, images and connections from this origin only; no inline
  script or style, no eval (htmx runs with `allowEval` off, see templates/base.html).
- `Cache-Control: no-store` on everything but static files: every other answer is either for a signed-in
  user or carries a CSRF token (the sign-in page), and none may be kept by a browser or a proxy.
- `Strict-Transport-Security` and the cookies' `Secure` flag when the request came over HTTPS. Behind a TLS
  proxy that is only known when the proxy is trusted (`PROXY_FIX_X_PROTO`, see dashboard/__init__.py).
"""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, has_request_context, request

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "object-src 'none'",
])
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"
_SECURE_POSITION = 5  # werkzeug's set_cookie(key, value, max_age, expires, path, domain, secure, ...)


class SecureCookieResponse(Response):
    """A response whose cookies are `Secure` whenever the request came over HTTPS.

    Flask's session, Flask-Login's remember cookie and the sign-in device cookie all go through
    `set_cookie` (deleting a cookie too), after the views and `after_request` handlers have run."""

    def set_cookie(self, key: str, *args: Any, **kwargs: Any) -> None:
        if has_request_context() and request.is_secure:
            if len(args) > _SECURE_POSITION:
                args = (*args[:_SECURE_POSITION], True, *args[_SECURE_POSITION + 1:])
            else:
                kwargs["secure"] = True
        super().set_cookie(key, *args, **kwargs)


def register(app: Flask) -> None:
    app.response_class = SecureCookieResponse

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        if request.endpoint != "static":
            headers["Cache-Control"] = "no-store"
        if request.is_secure:
            headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY
        return response

"""Which URLs a webhook may call: https (http only where the deployment allows it), public hosts only.

The host is checked when the URL is saved (a form error naming the problem) and again at every connection
(`sending`), where it counts: a name may resolve to a public address today and a private one tomorrow.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _

from dashboard import outbound

MAX_URL_LENGTH = 2000
ALLOW_HTTP_SETTING = "WEBHOOK_ALLOW_HTTP"
"""Lets webhooks use plain http:// URLs (default off; on when private addresses are allowed, as in tests)."""


def http_allowed() -> bool:
    return bool(current_app.config.get(ALLOW_HTTP_SETTING, False)) or outbound.private_allowed()


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook's, in people's words, or None."""
    url = url.strip()
    if not url:
        return _("Enter the URL to send alert events to.")
    if len(url) > MAX_URL_LENGTH or any(c <= " " or c == "\x7f" for c in url):
        return _("Enter a URL without spaces, at most %(n)d characters.", n=MAX_URL_LENGTH)
    try:  # urlsplit refuses a bracket left open (https://[::1); .port a port that is not a number
        parts = urlsplit(url)
        hostname, _port = parts.hostname, parts.port
    except ValueError:
        return _("Enter a URL whose host and port can be read, such as https://hooks.example.org/alerts.")
    schemes = ("https", "http") if http_allowed() else ("https",)
    if parts.scheme == "http" and "http" not in schemes:
        return _("The URL must start with https://: messages are not sent unencrypted.")
    if parts.scheme not in schemes or not hostname:
        return _("Enter a URL that starts with https://, such as https://hooks.example.org/alerts.")
    if parts.username or parts.password:
        return _("Enter the URL without a user name or password in it.")
    refusal = outbound.url_refusal(url, outbound.private_allowed())
    if refusal is not None:
        return _("The URL cannot be used: %(reason)s", reason=refusal.describe())
    return None

"""Rate limits (Flask-Limiter, counted in Redis; in memory while Redis is down, never "no limit").

- Sign-in: per client address, and a slower limit per account that counts only
  failed attempts. A browser that signed in as that account before (it carries
  a signed device cookie) is exempt from the account's limit, so nobody can lock
  a real user out by failing on purpose from elsewhere. Unknown and known
  accounts are limited alike (the key is the email as typed).
- The current-password check when changing one's password: like sign-in.
- The ingestion API: per token, answered with 429 and `Retry-After`.

The client address is `request.remote_addr`: behind a proxy, only the
configured ProxyFix makes that the real client (`X-Forwarded-For` is not
trusted otherwise).
"""
from __future__ import annotations

import hashlib

from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

DEVICE_COOKIE = "known_device"
DEVICE_COOKIE_DAYS = 365
DEVICE_ACCOUNTS = 5
"""Accounts one browser remembers having signed in as."""


def login_limit_per_address() -> str:
    return current_app.config["LOGIN_LIMIT_PER_ADDRESS"]


def login_limit_per_account() -> str:
    return current_app.config["LOGIN_LIMIT_PER_ACCOUNT"]


def api_limit_per_token() -> str:
    return current_app.config["API_LIMIT_PER_TOKEN"]


def submitted_account() -> str:
    """The account a sign-in names, as typed (so unknown and known emails are counted alike)."""
    email = (request.form.get("email") or "").strip().lower()
    return "account:" + hashlib.sha256(email.encode()).hexdigest()


def signed_in_account() -> str:
    from flask_login import current_user

    return f"user:{current_user.get_id()}"


def bearer_token() -> str:
    token = request.authorization.token if request.authorization and request.authorization.token else ""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()


def failed(response: Response) -> bool:
    """Only refused credentials count toward an account's limit."""
    return response.status_code in (401, 422)


# The device cookie ---------------------------------------------------------------------------------------

def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="known-device")


def known_accounts() -> list[int]:
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        value = _serializer().loads(raw, max_age=DEVICE_COOKIE_DAYS * 86400)
    except BadSignature:
        return []
    return [int(v) for v in value if isinstance(v, int)] if isinstance(value, list) else []


def remember_device(response: Response, user_id: int) -> None:
    accounts = [user_id] + [a for a in known_accounts() if a != user_id]
    response.set_cookie(DEVICE_COOKIE, _serializer().dumps(accounts[:DEVICE_ACCOUNTS]),
                        max_age=DEVICE_COOKIE_DAYS * 86400, httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])

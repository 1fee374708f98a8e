"""Sign in, sign out and change one's own password; sessions that can be revoked.

A session carries its user's `session_version`; the user loader refuses a
session whose version is not the user's current one. Signing out, changing
the password (for the other sessions) and losing one's administrator role
bump the version, which ends those sessions at once, live streams included.
Sessions also end after `SESSION_IDLE_MINUTES` without a request (Flask checks
the signed cookie's age; every request renews it), and CSRF tokens with them.

Sign-in is rate limited (see `dashboard.web.limits`) instead of locking
accounts, and answers unknown and known accounts alike, in comparable time.
The platform's audit log keeps each failed sign-in (the address tried, never
the password), each time the per-account limit starts refusing an address,
and each password change.
"""
from __future__ import annotations

import math
import time
from datetime import timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from dashboard import audit
from dashboard.extensions import db, limiter, login_manager
from dashboard.models import AuditEntry, User, utcnow
from dashboard.people import end_resets
from dashboard.sessions import SESSION_VERSION_KEY, revoke_sessions
from dashboard.vocabulary import AuditAction
from dashboard.web import limits
from dashboard.web.forms import LoginForm, PasswordForm

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = None


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id))
    if user is None or session.get(SESSION_VERSION_KEY) != user.session_version:
        return None  # revoked: signed out elsewhere, password changed, or no longer an administrator
    return user


def _safe_next(target: str | None) -> str:
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("orgs.home")


def _dummy_hash() -> str:
    """A hash of nothing anyone knows, made with the configured method, so unknown accounts cost as much."""
    cached = current_app.extensions.get("dummy_password_hash")
    if cached is None:
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
        cached = current_app.extensions["dummy_password_hash"] = generate_password_hash("dummy", method=method)
    return cached


def _is_known_device() -> bool:
    email = (request.form.get("email") or "").strip().lower()
    user_id = db.session.scalar(sa.select(User.id).where(User.email == email)) if email else None
    return user_id is not None and user_id in limits.known_accounts()


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(limits.login_limit_per_address, methods=["POST"], scope="login-address")
@limiter.limit(limits.login_limit_per_account, methods=["POST"], key_func=limits.submitted_account,
               scope="login-account", deduct_when=limits.failed, exempt_when=_is_known_device)
def login():
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("orgs.home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = db.session.scalar(sa.select(User).where(User.email == form.email.data.strip().lower()))
        if user is None:
            check_password_hash(_dummy_hash(), form.password.data)
        elif user.check_password(form.password.data):
            session.permanent = True
            session[SESSION_VERSION_KEY] = user.session_version
            login_user(user)
            response = redirect(_safe_next(request.args.get("next")))
            limits.remember_device(response, user.id)
            return response
        audit.record(AuditAction.SIGN_IN_FAILED, organization_id=None, actor_email=_typed_email(),
                     target=_account_target(user))
        db.session.commit()
        flash(_("Wrong email or password."), "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    """Sign out: this session, and every other session of the user, ends."""
    revoke_sessions(current_user.id)
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@limiter.limit(limits.login_limit_per_address, methods=["POST"], scope="password-address")
@limiter.limit(limits.login_limit_per_account, methods=["POST"], key_func=limits.signed_in_account,
               scope="password-account", deduct_when=limits.failed)
def change_password():
    """Change one's password; the user's other sessions end, this one stays signed in."""
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        if current_user.check_password(form.current.data):
            current_user.set_password(form.new.data)
            end_resets(current_user.id, utcnow())  # a reset link sent before the change no longer works
            session[SESSION_VERSION_KEY] = revoke_sessions(current_user.id)
            audit.record(AuditAction.PASSWORD_CHANGED, organization_id=None,
                         target=_account_target(current_user))
            db.session.commit()
            flash(_("Your password is changed."), "info")
            return redirect(url_for("orgs.home"))
        form.current.errors.append(_("The current password is wrong."))
        status = 422
    elif request.method == "POST":
        status = 422
    return render_template("auth/password.html", form=form), status


@bp.app_errorhandler(429)
def too_many_requests(error):  # type: ignore[no-untyped-def]
    """The sign-in and password pages say so in their form; everything else answers as errors do.

    `Retry-After` is set here, on refusals only (Flask-Limiter's own headers would put it on every answer).
    """
    from dashboard.web.errors import render_error

    breached = limiter.current_limit
    if request.endpoint == "auth.login" and breached is not None and ":login-account" in breached.key:
        _record_lockout(breached.limit.get_expiry())
    if request.endpoint in ("auth.login", "auth.change_password"):
        form = LoginForm() if request.endpoint == "auth.login" else PasswordForm()
        flash(_("Too many attempts. Wait a few minutes, then try again."), "error")
        template = "auth/login.html" if request.endpoint == "auth.login" else "auth/password.html"
        response, status = make_response(render_template(template, form=form)), 429
    else:
        response, status = render_error(429, _("Too many requests. Wait a little, then try again."))
    wait = breached.reset_at - time.time() if breached is not None else 60
    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response, status


def _typed_email() -> str:
    return (request.form.get("email") or "").strip().lower()


def _account_target(user: User | None) -> audit.Target | None:
    return ("user", user.id, user.email) if user is not None else None


def _record_lockout(window_seconds: int) -> None:
    """One SIGN_IN_LOCKED entry per lockout: the first refusal of an address in the limit's window is logged,
    the refusals after it (an attacker's every further try) are not."""
    email = _typed_email()
    since = utcnow() - timedelta(seconds=window_seconds)
    logged = db.session.scalar(sa.select(AuditEntry.id).where(
        AuditEntry.organization_id.is_(None), AuditEntry.at >= since,
        AuditEntry.action == AuditAction.SIGN_IN_LOCKED.value, AuditEntry.actor_email == email).limit(1))
    if logged is None:
        user = db.session.scalar(sa.select(User).where(User.email == email)) if email else None
        audit.record(AuditAction.SIGN_IN_LOCKED, organization_id=None, actor_email=email,
                     target=_account_target(user), detail={"window_seconds": window_seconds})
    db.session.commit()

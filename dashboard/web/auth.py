"""Sign in, sign out and change one's own password."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from dashboard.extensions import db, login_manager
from dashboard.models import User, utcnow
from dashboard.web.forms import LoginForm, PasswordForm

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = None


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def _safe_next(target: str | None) -> str:
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("orgs.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with email and password; repeated failures lock the account for a while."""
    if current_user.is_authenticated:
        return redirect(url_for("orgs.home"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = db.session.scalar(sa.select(User).where(User.email == form.email.data.strip().lower()))
        now = utcnow()
        if user is not None and user.locked_until and user.locked_until > now:
            flash(_("Too many failed sign-ins. Try again in a few minutes."), "error")
            status = 429
        elif user is not None and user.check_password(form.password.data):
            user.failed_logins = 0
            user.locked_until = None
            db.session.commit()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        else:
            if user is not None:
                user.failed_logins += 1
                if user.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
                    user.locked_until = now + timedelta(seconds=current_app.config["LOGIN_LOCKOUT_SECONDS"])
                    user.failed_logins = 0
                db.session.commit()
            flash(_("Wrong email or password."), "error")
            status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        if current_user.check_password(form.current.data):
            current_user.set_password(form.new.data)
            db.session.commit()
            flash(_("Your password is changed."), "info")
            return redirect(url_for("orgs.home"))
        form.current.errors.append(_("The current password is wrong."))
        status = 422
    elif request.method == "POST":
        status = 422
    return render_template("auth/password.html", form=form), status

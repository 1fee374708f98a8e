"""A forgotten password: ask for a link by email, then set a new password with it.

The request answers the same, as quickly, whether or not an account uses the address (the email goes
from a job on the delivery queue), and is rate limited
like signing in (per client address, and per address typed). The link works once, for an hour;
using it ends every other session of the account and signs this browser in.
"""
from __future__ import annotations

import secrets

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from dashboard import people
from dashboard.database import write_transaction
from dashboard.extensions import limiter
from dashboard.models import utcnow
from dashboard.queues import deliver_after_commit
from dashboard.sessions import start_session
from dashboard.web import limits
from dashboard.web.people_forms import ForgotForm, ResetForm

bp = Blueprint("password_reset", __name__)


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(limits.login_limit_per_address, methods=["POST"], scope="forgot-address")
@limiter.limit(limits.login_limit_per_account, methods=["POST"], key_func=limits.submitted_account,
               scope="forgot-account")
def forgot():
    """Ask for a reset link; the answer never tells whether the address has an account."""
    form = ForgotForm()
    if form.validate_on_submit():
        with write_transaction():
            found = people.request_reset(form.email.data, utcnow())
            if found is not None:  # sent by a job after the commit: the answer takes as long either way
                deliver_after_commit("jobs.email.send_message", people.reset_email(*found).as_bytes(),
                                     job_id=f"password-reset-{secrets.token_hex(8)}")
        flash(_("If an account uses that address, we have sent a link to it to set a new password. "
                "The link works for one hour."), "info")
        return redirect(url_for("auth.login"))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/forgot.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    """Set a new password with a link from the email; a used, expired or unknown link gets one clear page."""
    now = utcnow()
    if people.usable_reset(token, now) is None:
        return render_template("people/invalid_link.html", kind="reset"), 410
    form = ResetForm()
    if form.validate_on_submit():
        with write_transaction():
            password_reset = people.usable_reset(token, now)
            if password_reset is None:
                return render_template("people/invalid_link.html", kind="reset"), 410
            user, version = people.reset_password(password_reset, form.password.data, now)
        start_session(user, version)
        flash(_("Your new password is set, and you are signed in. Any other session of yours has ended."), "info")
        return redirect(url_for("orgs.home"))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/reset.html", form=form), status

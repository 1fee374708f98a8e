"""A person's email preferences: the page every alert email's `List-Unsubscribe` points at.

It edits only the signed-in person: there is no user in its address, so nobody reaches another's choices.
"""
from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from dashboard.extensions import db
from dashboard.i18n import home_language
from dashboard.mail.digest_content import time_zone_of
from dashboard.mail.links import PREFERENCES_PATH
from dashboard.web.fragments import wants_fragment
from dashboard.web.preference_forms import EmailPreferencesForm

bp = Blueprint("preferences", __name__)


@bp.route(PREFERENCES_PATH, methods=["GET", "POST"])
@login_required
def edit():
    """Show and save the signed-in person's email preferences and language; bad input saves nothing.

    `?unsubscribe=1` (from an email's unsubscribe link) shows "never" chosen for both, saved only on Save.
    A new language reloads the whole page (htmx too), so that all of it speaks the language chosen.
    """
    user = current_user._get_current_object()
    organization_language = home_language(user)
    if request.method == "GET":
        unsubscribe = request.args.get("unsubscribe") == "1"
        saved = request.args.get("saved") == "1"
        return _page(EmailPreferencesForm.of(user, organization_language, unsubscribe=unsubscribe),
                     unsubscribe=unsubscribe, status=_("Your email preferences are saved.") if saved else "")
    form = EmailPreferencesForm(organization_language=organization_language)
    if not form.validate_on_submit():
        return _page(form), 422
    language_before = user.language
    form.save_to(user)
    db.session.commit()
    if not wants_fragment():
        return redirect(url_for("preferences.edit", saved=1))
    if user.language != language_before:
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url_for("preferences.edit", saved=1)
        return response
    return _page(EmailPreferencesForm.of(user, organization_language),
                 status=_("Your email preferences are saved."))


def _page(form: EmailPreferencesForm, unsubscribe: bool = False, status: str = "") -> str:
    """The page, or for htmx its editor alone with the status line filled out of band."""
    template = "account/_notifications_editor.html" if wants_fragment() else "account/notifications.html"
    return render_template(template, form=form, unsubscribe=unsubscribe, status=status,
                           zone=time_zone_of(current_user), fragment=wants_fragment())

"""The interface language of each request and message.

A signed-in person reads their own choice (`User.language`), else their organization's language: the one in the
address (`/orgs/<slug>/...`), else that of their first membership. Anonymous pages (sign-in, invitation, password
reset) follow the browser's `Accept-Language` among `LANGUAGES`. Everything else falls back to
`BABEL_DEFAULT_LOCALE`. Emails and webhooks do not have a request: they ask `language_for`.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from flask import Flask, current_app, g, has_app_context, has_request_context, request
from flask_babel import get_locale, get_translations, refresh
from flask_login import current_user

from dashboard.extensions import babel, db
from dashboard.models import Membership, Organization, User
from dashboard.vocabulary import LANGUAGES

LANGUAGE_NAMES = {"nb": "Norsk bokmål", "en": "English"}
"""Each language in its own words, as a language switch names it (never translated)."""


def init_app(app: Flask) -> None:
    """Set up Flask-Babel (catalogues in `dashboard/translations`), choosing each request's locale."""
    babel.init_app(app, locale_selector=select_locale)
    # Flask-Babel keeps the locale on `g`; a request inside an outer app context (tests, tools) would inherit the
    # previous request's: each request chooses afresh.
    app.before_request(refresh)
    app.context_processor(lambda: {"current_locale": current_locale(), "LANGUAGE_NAMES": LANGUAGE_NAMES})
    # Flask-Babel's own template callables, with the catalogue found through `translations` (a page calls them
    # hundreds of times).
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
    )


def translations() -> Any:
    """Flask-Babel's `get_translations()`: the same catalogue, remembered beside the Locale object it is for.

    Flask-Babel finds it anew at each call (the locale's name built, the cache looked up); here that is done once
    per locale object on the request's Babel context. `force_locale` and `refresh` put another object there
    (and `force_locale` puts the old one back), so the catalogue always follows the locale in force. The app has
    one translation domain, so the locale alone names the catalogue.
    """
    context = g.get("_flask_babel") if has_app_context() else None
    locale = getattr(context, "babel_locale", None)
    remembered = getattr(context, "dashboard_translations", None)
    if locale is not None and remembered is not None and remembered[0] is locale:
        return remembered[1]
    found = get_translations()
    context = g.get("_flask_babel") if has_app_context() else None
    locale = getattr(context, "babel_locale", None)
    if locale is not None:
        context.dashboard_translations = (locale, found)  # type: ignore[union-attr]
    return found


def default_language() -> str:
    return current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


def current_locale() -> str:
    """The language code of the request (or of a `force_locale` block), as `lang` attributes take it."""
    locale = get_locale()
    return str(locale) if locale is not None else default_language()


def select_locale() -> str:
    """Flask-Babel's locale selector: called once per request, the result kept for the request.

    An error page for a database that cannot answer (503) is still rendered: then the browser's languages decide.
    """
    if has_request_context() and current_user.is_authenticated:
        try:
            return language_for(current_user, address_language=_language_in_address())
        except SQLAlchemyError:  # busy, or the user's row detached by the error handler
            pass
    if has_request_context():
        return request.accept_languages.best_match(LANGUAGES) or default_language()
    return default_language()


def language_for(user: User | Any, organization: Organization | None = None, *,
                 address_language: str | None = None) -> str:
    """The language to speak to `user` in: their choice, else `organization`'s (the one the message or page is
    about; for a page, the language of the one in its address), else their first organization's, else the
    default."""
    if getattr(user, "language", None) in LANGUAGES:
        return user.language
    if organization is not None and organization.language in LANGUAGES:
        return organization.language
    if address_language in LANGUAGES:
        return address_language  # type: ignore[return-value]
    return home_language(user)


def home_language(user: User | Any) -> str:
    """The language of the person's first organization (what "my organization's language" means), else the
    default."""
    first = db.session.scalar(
        sa.select(Organization.language).join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user.id).order_by(Membership.id).limit(1))
    return first if first in LANGUAGES else default_language()


def organization_language(organization: Organization | None) -> str:
    """An organization's language (its webhooks speak it); the default for the platform's."""
    if organization is not None and organization.language in LANGUAGES:
        return organization.language
    return default_language()


def _language_in_address() -> str | None:
    """The language of the organization in the page's address (`/orgs/<slug>/...`), if the person may read it
    (two columns only: the page loads the organization itself)."""
    slug = (request.view_args or {}).get("org")
    if not isinstance(slug, str):
        return None
    row = db.session.execute(sa.select(Organization.id, Organization.language).where(Organization.slug == slug)).first()
    if row is None or not current_user.can_read(row.id):
        return None  # another organization's address says nothing of it, not even its language
    return row.language

"""A notification as its person's tray shows it, rendered for the live event that announces it.

The event goes to the person's own channel (`user_channel`: the stream serves it to that user only), so the
rendered item is theirs to see; the page inserts it without fetching the list (static/js/live.js). It is rendered
in the language the person is spoken to in; a page in another language fetches its list instead. The item's form
carries no CSRF token (that is signed for a browser session): the page writes its own in.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale, get_locale

from dashboard.alerts.titles import notification_title
from dashboard.extensions import db
from dashboard.i18n import language_for
from dashboard.models import Notification, Organization, User

TRAY_ID_PREFIX = "tray-"
"""The ids of the tray's items (the notifications page uses another, so both can share a page)."""


def unread_count(user_id: int) -> int:
    """Unread announced notifications: gathered ones are counted by the summary that holds them."""
    return db.session.scalar(_UNREAD, {"user_id": user_id}) or 0


def _unread_of(user_id: sa.ColumnElement[int]) -> sa.Select:
    return (sa.select(sa.func.count()).select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None),
                   Notification.gathered_into_id.is_(None)))


_UNREAD = _unread_of(sa.bindparam("user_id"))
"""Built once: the tray's label reads it on every page."""

UNREAD_OF_PERSON = _unread_of(User.id).scalar_subquery()
"""`unread_count` as a column of a query of people (the writer reads it with the people it notifies)."""


def tray_event(notification: Notification, person: User, organization: Organization | None, unread: int
               ) -> dict[str, Any]:
    """The live event's data: the spoken title, the item, the tray button's label (`unread`: the person's
    unread count with this notification), and their language."""
    env = current_app.jinja_env
    with force_locale(language_for(person, organization)):
        item = env.get_template("notifications/_item.html").render(
            n=notification, org_name=organization.name if organization else None, id_prefix=TRAY_ID_PREFIX,
            url_for=_site_links(), csrf_token=lambda: "")
        label = env.get_template("notifications/_tray_label.html").render(unread_count=unread)
        return {"title": notification_title(notification), "lang": str(get_locale()), "html": item, "label": label}


def _site_links():  # type: ignore[no-untyped-def]
    """`url_for` outside a request: paths under the site's root (`PUBLIC_BASE_URL`), as the page's own links."""
    root = urlsplit(current_app.config["PUBLIC_BASE_URL"]).path or "/"
    adapter = current_app.url_map.bind("localhost", script_name=root)
    return lambda endpoint, **values: adapter.build(endpoint, values)

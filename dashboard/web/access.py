"""The one place that decides who may read an organization or a global page."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable, TypeVar

import sqlalchemy as sa
from flask import abort
from flask_login import current_user, login_required

from dashboard.extensions import db
from dashboard.models import Organization

F = TypeVar("F", bound=Callable[..., Any])


def load_organization(slug: str) -> Organization:
    """The organization the signed-in user may read, or 404 (its existence is not revealed)."""
    org = db.session.scalar(sa.select(Organization).where(Organization.slug == slug))
    if org is None or not current_user.can_read(org.id):
        abort(404)
    return org


def org_view(view: F) -> F:
    """Sign-in required; replaces the `org` slug argument with the loaded organization."""

    @wraps(view)
    @login_required
    def wrapper(org: str, **kwargs: Any) -> Any:
        return view(load_organization(org), **kwargs)

    return wrapper  # type: ignore[return-value]


def global_admin_required(view: F) -> F:
    """Sign-in required, and 403 for anyone who is not a global admin."""

    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_global_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

"""The settings preview job: replay an organization's last 30 days with its current and proposed settings."""
from __future__ import annotations

from typing import Any

from jobs import get_app


def preview_settings(organization_id: int, current: dict[str, int | None],
                     proposed: dict[str, int | None]) -> Any:
    """Return the preview (RQ keeps it as the job's result for the page to read).

    It only reads the database (the replay writes to a scratch one of its own), so it runs in a plain app
    context rather than `in_app_context`, whose transactions take SQLite's write lock.
    """
    from flask import has_app_context

    if has_app_context():
        return _preview(organization_id, current, proposed)
    with get_app().app_context():
        from dashboard.extensions import db

        try:
            return _preview(organization_id, current, proposed)
        finally:
            db.session.remove()


def _preview(organization_id: int, current: dict[str, int | None], proposed: dict[str, int | None]) -> Any:
    from dashboard.alerts.preview import preview
    from dashboard.extensions import db
    from dashboard.models import Organization, utcnow

    organization = db.session.get(Organization, organization_id)
    if organization is None:
        return None
    slug = organization.slug
    db.session.rollback()  # end the read before the long replay
    return preview(slug, current, proposed, utcnow())

"""Revoking a user's sessions: one number on the user, checked on every request and by live streams."""
from __future__ import annotations

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.live.publish import queue_event, user_channel
from dashboard.models import User
from dashboard.vocabulary import LiveEvent

SESSION_VERSION_KEY = "session_version"
"""Where a session keeps the version of its user it was signed in with."""


def revoke_sessions(user_id: int) -> int:
    """End every session of the user (in the caller's transaction); returns the new version.

    Requests of an older session are treated as signed out; its open live streams close once
    the commit is published.
    """
    version = db.session.scalar(
        sa.update(User).where(User.id == user_id).values(session_version=User.session_version + 1)
        .returning(User.session_version)
    )
    queue_event(user_channel(user_id), LiveEvent.SESSIONS_REVOKED, {"session_version": version})
    return int(version)


def start_session(user: User, version: int) -> None:
    """Sign `user` in on this browser with a new session of `version` (after accepting an invitation or
    resetting a password), as the sign-in form does; any session the browser had ends."""
    from flask import session
    from flask_login import login_user, logout_user

    logout_user()
    session.clear()
    session.permanent = True
    session[SESSION_VERSION_KEY] = version
    login_user(user)

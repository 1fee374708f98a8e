"""GET /events: the signed-in user's live stream."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from flask_login import current_user, login_required

from dashboard.extensions import db
from dashboard.live.stream import broker_for, channels_for, event_stream

bp = Blueprint("live", __name__)
LONG_LIVED = "dashboard.long_lived"
"""Set in the environ of a response that stays open: the server may then drop what the request left there
(gunicorn.conf.py does)."""


@bp.get("/events")
@login_required
def events() -> Response:
    """Stream the events of exactly the channels this user may read."""
    channels = channels_for(current_user.id, current_user.organization_ids(), current_user.is_global_admin)
    session_version = current_user.session_version
    broker = broker_for(current_app.config["REDIS_URL"])
    db.session.remove()  # an open stream must not hold a database connection
    # The stream needs nothing from the request, so no stream_with_context: the request context
    # (request, session, user) is released when this returns instead of living as long as the stream.
    # direct_passthrough hands the byte generator to the server as it is, without werkzeug's encoding
    # and closing wrappers, which keeps each waiting stream's saved greenlet stack smaller.
    response = Response(event_stream(broker, channels, session_version=session_version),
                        mimetype="text/event-stream", direct_passthrough=True)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    request.environ[LONG_LIVED] = True
    return response

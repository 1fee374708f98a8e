"""GET /events: the signed-in user's live stream."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, stream_with_context
from flask_login import current_user, login_required

from dashboard.extensions import db
from dashboard.live.stream import broker_for, channels_for, event_stream

bp = Blueprint("live", __name__)


@bp.get("/events")
@login_required
def events() -> Response:
    """Stream the events of exactly the channels this user may read."""
    channels = channels_for(current_user.id, current_user.organization_ids(), current_user.is_global_admin)
    broker = broker_for(current_app.config["REDIS_URL"])
    db.session.remove()  # an open stream must not hold a database connection
    response = Response(stream_with_context(event_stream(broker, channels)), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response

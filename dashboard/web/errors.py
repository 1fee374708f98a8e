"""Error pages in the site layout; JSON for API paths."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, make_response, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from dashboard.database import DatabaseBusy, read_only_from_now
from dashboard.extensions import db

log = logging.getLogger(__name__)
BUSY_RETRY_AFTER_SECONDS = 1
FULL_RETRY_AFTER_SECONDS = 60


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):  # type: ignore[no-untyped-def]
        return render_error(400, error.description)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        return render_error(error.code or 500, error.description)

    @app.errorhandler(DatabaseBusy)
    def database_busy(error: DatabaseBusy):  # type: ignore[no-untyped-def]
        return _unavailable(error.reason, error.retry_after)

    @app.errorhandler(PoolTimeout)
    def no_connection(_error: PoolTimeout):  # type: ignore[no-untyped-def]
        return _unavailable(_("Every database connection is busy; nothing was written"), BUSY_RETRY_AFTER_SECONDS)

    @app.errorhandler(OperationalError)
    def database_unavailable(error: OperationalError):  # type: ignore[no-untyped-def]
        """The database refused the work for now (locked, full, unreachable): 503, never a bare 500."""
        log.warning("database unavailable: %s", error.orig)
        text = str(error.orig).lower()
        if "full" in text:
            return _unavailable(_("The database is full; nothing was written"), FULL_RETRY_AFTER_SECONDS)
        if "locked" in text or "busy" in text:
            return _unavailable(_("The database is busy with other writes; nothing was written"),
                                BUSY_RETRY_AFTER_SECONDS)
        return _unavailable(_("The database cannot be reached; nothing was written"), BUSY_RETRY_AFTER_SECONDS)


def _unavailable(reason: str, retry_after: int) -> tuple[Response, int]:
    db.session.rollback()
    read_only_from_now()
    response, code = render_error(503, reason)
    response.headers["Retry-After"] = str(retry_after)
    return response, code


def render_error(code: int, description: str | None) -> tuple[Response, int]:
    if request.path.startswith("/api/"):
        return jsonify(error={"status": code, "message": description or "Server error"}), code
    template = f"errors/{code}.html" if code in (403, 404, 500) else "errors/generic.html"
    return make_response(render_template(template, code=code, description=description)), code

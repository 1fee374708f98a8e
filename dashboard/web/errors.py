"""Error pages in the site layout; JSON for API paths."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):  # type: ignore[no-untyped-def]
        return _render(400, error.description)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        return _render(error.code or 500, error.description)


def _render(code: int, description: str | None):  # type: ignore[no-untyped-def]
    if request.path.startswith("/api/"):
        return jsonify(error={"status": code, "message": description or "Server error"}), code
    template = f"errors/{code}.html" if code in (403, 404, 500) else "errors/generic.html"
    return render_template(template, code=code, description=description), code

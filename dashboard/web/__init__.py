"""Web blueprints by area, and what every request shares."""
from __future__ import annotations

from flask import Flask, g, request

from dashboard.database import mark_writer, unmark_writer


def register_blueprints(app: Flask) -> None:
    from dashboard.extensions import csrf
    from dashboard.web import (
        alert_actions, alerts, api, audit_log, auth, connector_admin, errors, formatting, health, live, maintenance,
        notifications, org_admin, orgs, password_reset, people, platform, preferences, security, settings, status,
        webhooks,
    )

    app.register_blueprint(auth.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(orgs.bp)
    app.register_blueprint(platform.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(alerts.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(alert_actions.bp)
    app.register_blueprint(preferences.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(maintenance.bp)
    app.register_blueprint(org_admin.bp)
    app.register_blueprint(connector_admin.bp)
    app.register_blueprint(people.bp)
    app.register_blueprint(password_reset.bp)
    app.register_blueprint(audit_log.bp)
    app.register_blueprint(live.bp)
    csrf.exempt(api.bp)
    app.register_blueprint(api.bp)
    errors.register(app)
    formatting.register(app)
    security.register(app)

    @app.before_request
    def _writes_begin_immediate() -> None:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            g.writer_token = mark_writer()

    @app.teardown_request
    def _end_writer(_exc: BaseException | None) -> None:
        token = g.pop("writer_token", None)
        if token is not None:
            unmark_writer(token)

"""The integration-status dashboard: app factory."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from dashboard.config import INSTANCE_PATH, PROJECT_ROOT, Config


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; `config` overrides settings read from the environment."""
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_PATH),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.from_object(Config())
    if config:
        app.config.update(config)
    INSTANCE_PATH.mkdir(parents=True, exist_ok=True)

    from dashboard import models  # noqa: F401  (registers the models)
    from dashboard.database import configure_engine
    from dashboard.extensions import babel, csrf, db, htmx, login_manager, migrate, redis_ext

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "dashboard" / "migrations"))
    csrf.init_app(app)
    babel.init_app(app)
    htmx.init_app(app)
    redis_ext.init_app(app)
    login_manager.init_app(app)
    with app.app_context():
        configure_engine(db.engine, app.config["SQLITE_WRITE_WAIT_SECONDS"])

    from dashboard.web import converters, register_blueprints

    converters.register(app)
    register_blueprints(app)

    from dashboard.cli import register_commands

    register_commands(app)
    return app

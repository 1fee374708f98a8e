"""The integration-status dashboard: app factory."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from dashboard.config import INSTANCE_PATH, PROJECT_ROOT, Config
from dashboard.secret_key import MissingSecretKey, usable


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
    if not app.testing and not usable(app.config["SECRET_KEY"]):
        raise MissingSecretKey()
    if app.config["SQLALCHEMY_DATABASE_URI"] in ("sqlite://", "sqlite:///:memory:"):
        # one shared in-memory connection (tests, tools): the pool-size settings do not apply
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    INSTANCE_PATH.mkdir(parents=True, exist_ok=True)

    from dashboard import models  # noqa: F401  (registers the models)
    from dashboard.database import configure_engine
    from dashboard import i18n
    from dashboard.extensions import csrf, db, htmx, limiter, login_manager, migrate, redis_ext

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "dashboard" / "migrations"))
    csrf.init_app(app)
    i18n.init_app(app)
    htmx.init_app(app)
    redis_ext.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    with app.app_context():
        configure_engine(db.engine, app.config["SQLITE_WRITE_WAIT_SECONDS"])

    from dashboard.web import converters, register_blueprints

    converters.register(app)
    register_blueprints(app)
    from dashboard import metrics

    app.register_blueprint(metrics.bp)

    from dashboard.cli import register_commands

    register_commands(app)

    # Behind a TLS proxy: believe X-Forwarded-For / X-Forwarded-Proto from this many proxies (0: from none).
    x_for, x_proto = int(app.config.get("PROXY_FIX_X_FOR", 0)), int(app.config.get("PROXY_FIX_X_PROTO", 0))
    if x_for or x_proto:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=x_for, x_proto=x_proto)  # type: ignore[method-assign]
    return app

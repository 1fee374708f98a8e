"""Extensions, created here and bound to an app in `create_app`."""
from __future__ import annotations

import redis
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx


class Base(so.DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
htmx = Htmx()


def client_address() -> str:
    """The client's address as this server sees it (a configured ProxyFix makes it the real client's)."""
    return request.remote_addr or "unknown"


class RateLimiter(Limiter):
    """Flask-Limiter counting in the app's Redis (`REDIS_URL`), in memory while Redis is down."""

    def init_app(self, app: Flask) -> None:  # type: ignore[override]
        redis_url = app.config["REDIS_URL"]
        if redis_url.startswith("unix://"):  # the limits library spells a unix socket redis+unix://
            redis_url = "redis+unix://" + redis_url.removeprefix("unix://")
        app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url)
        super().init_app(app)


limiter = RateLimiter(key_func=client_address, key_prefix="dashboard-limits")


class RedisExtension:
    """One Redis client per app, from `REDIS_URL`."""

    def init_app(self, app: Flask) -> None:
        app.extensions["redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5
        )

    @property
    def client(self) -> redis.Redis:
        return current_app.extensions["redis"]


redis_ext = RedisExtension()

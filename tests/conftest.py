"""The world for tests: a real Redis, a real database, the app, and small factories.

`TEST_DATABASE_URL` points the database tests at PostgreSQL; otherwise each
session gets an SQLite file. `TEST_REDIS_URL` points at a Redis server;
otherwise an embedded one is started on a temporary socket.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
import redis as redis_lib
import sqlalchemy as sa

from dashboard import create_app, embedded_redis
from dashboard.extensions import db as _db
from tests import factories

DB_FIXTURES = {"app", "db", "client", "world"}
os.environ.setdefault("SECRET_KEY", "tests-" + os.urandom(16).hex())  # the workers and servers tests start need one


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dash-tests-") as root:
        yield Path(root)


@pytest.fixture(scope="session")
def redis_url(tmp_root: Path) -> Iterator[str]:
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    socket_path = tmp_root / "redis.sock"
    process = embedded_redis.start(socket_path)
    try:
        yield f"unix://{socket_path}"
    finally:
        embedded_redis.stop(process, socket_path)


@pytest.fixture(scope="session")
def database_url(tmp_root: Path) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_root / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def _schema_app(database_url: str, redis_url: str):  # type: ignore[no-untyped-def]
    app = create_app(_test_config(database_url, redis_url))
    with app.app_context():
        _db.drop_all()
        _db.create_all()
        _db.engine.dispose()
    return app


def _test_config(database_url: str, redis_url: str) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "WTF_CSRF_ENABLED": False,
        "SERVER_NAME": None,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",  # fast hashing: tests create many users
    }


@pytest.fixture()
def app_config() -> dict:
    """Override per test (for example to enable CSRF)."""
    return {}


@pytest.fixture()
def app(_schema_app, database_url: str, redis_url: str, app_config: dict):  # type: ignore[no-untyped-def]
    application = create_app({**_test_config(database_url, redis_url), **app_config})
    with application.app_context():
        _truncate()
        redis_lib.Redis.from_url(redis_url).flushdb()
        yield application
        _db.session.remove()
        _db.engine.dispose()


def _truncate() -> None:
    tables = list(reversed(_db.metadata.sorted_tables))
    with _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture()
def db(app):  # type: ignore[no-untyped-def]
    return _db


@pytest.fixture()
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture()
def runner(app):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


@pytest.fixture()
def world(app):  # type: ignore[no-untyped-def]
    """Two organizations with an admin each, a sandbox connector each, and a global admin."""
    return factories.two_org_world()


@pytest.fixture()
def login(client):  # type: ignore[no-untyped-def]
    def _login(user, password: str = factories.PASSWORD):  # type: ignore[no-untyped-def]
        response = client.post("/login", data={"email": user.email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return _login

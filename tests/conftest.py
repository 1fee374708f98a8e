"""The world for tests: a real Redis, a real database, the app, and small factories.

`TEST_DATABASE_URL` points the database tests at PostgreSQL; otherwise each
session gets an SQLite file. `TEST_REDIS_URL` points at a Redis server;
otherwise an embedded one is started on a temporary socket.

Under pytest-xdist (`-n 2`, as CI runs the fast tests) each worker process is a
session of its own: its own SQLite file and embedded Redis, and on PostgreSQL
its own database (`<name>_gw0`, `<name>_gw1`, created when missing) and, on a
shared Redis server, its own Redis database number.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


def _xdist_worker() -> int | None:
    """This process's number under pytest-xdist (gw0 -> 0), or None when the tests run in one process."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") else None


@pytest.fixture(scope="session")
def redis_url(tmp_root: Path) -> Iterator[str]:
    if os.environ.get("TEST_REDIS_URL"):
        yield _worker_redis_url(os.environ["TEST_REDIS_URL"], _xdist_worker())
        return
    socket_path = tmp_root / "redis.sock"
    process = embedded_redis.start(socket_path)
    try:
        yield f"unix://{socket_path}"
    finally:
        embedded_redis.stop(process, socket_path)


def _worker_redis_url(url: str, worker: int | None) -> str:
    """A worker's own database number on a shared Redis server (1 + its number), so flushdb stays its own:
    the path of a redis:// URL, the `db` parameter of a unix:// one (which also overrides a path)."""
    if worker is None:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"]
    if parts.scheme == "unix":
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query + [('db', str(worker + 1))])}"
    return urlunsplit(parts._replace(path=f"/{worker + 1}", query=urlencode(query)))


@pytest.fixture(scope="session")
def database_url(tmp_root: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_root / 'test.sqlite3'}"
    worker = _xdist_worker()
    return url if worker is None else _worker_database(url, worker)


def _worker_database(url: str, worker: int) -> str:
    """The worker's own PostgreSQL database beside TEST_DATABASE_URL's, created when it is missing."""
    base = sa.engine.make_url(url)
    own = base.set(database=f"{base.database}_gw{worker}")
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": own.database})
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{own.database}"'))
    finally:
        engine.dispose()
    return own.render_as_string(hide_password=False)


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

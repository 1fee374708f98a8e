"""Demo data and migrations."""
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dashboard.extensions import db as _db
from dashboard.models import Organization, SyncRecord, User


def _counts(db):
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(m)) for m in (Organization, User, SyncRecord))


def test_seed_demo_twice_duplicates_nothing(runner, db):
    """Given an empty database, when seed-demo runs twice, the second run adds nothing."""
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "global@platform.example" in first.output
    after_first = _counts(db)
    assert after_first[0] == 3 and after_first[1] == 4 and after_first[2] >= 600
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert _counts(db) == after_first


def test_users_create_command(runner, db, world):
    result = runner.invoke(args=["users", "create", "new@example.org", "--org", "org-a",
                                 "--password", "long enough pw"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(sa.select(User).where(User.email == "new@example.org"))
    assert user.organization_ids() == {world.org_a.id}


def test_users_create_refuses_unknown_org(runner, db, world):
    result = runner.invoke(args=["users", "create", "new@example.org", "--org", "nope", "--password", "long enough pw"])
    assert result.exit_code != 0
    assert "no organization with slug 'nope'" in result.output


def test_migrations_from_empty_match_the_models(app, tmp_path):
    """Given an empty database, when every migration runs, the schema equals the models' metadata."""
    from flask_migrate import upgrade

    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        target = f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
    else:
        target = sa.engine.make_url(url).set(database=_scratch_postgres_db(url)).render_as_string(hide_password=False)
    from dashboard import create_app

    migrated = create_app({"SQLALCHEMY_DATABASE_URI": target, "REDIS_URL": app.config["REDIS_URL"]})
    with migrated.app_context():
        upgrade()
        with _db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), _db.metadata)
        _db.engine.dispose()
    assert diff == []


def _scratch_postgres_db(url: str) -> str:
    name = "dashboard_migration_check"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return name


def test_connectors_scenario_command_sets_a_sandbox_scenario(runner, db, world):
    result = runner.invoke(args=["connectors", "scenario", "org-a", "period_locked", "--record-type", "mileage_claim"])
    assert result.exit_code == 0, result.output
    db.session.refresh(world.connector_a)
    assert world.connector_a.settings == {"scenario": "period_locked", "record_type": "mileage_claim"}


def test_connectors_scenario_command_refuses_an_unknown_scenario(runner, db, world):
    result = runner.invoke(args=["connectors", "scenario", "org-a", "on-fire"])
    assert result.exit_code != 0 and "on-fire" in result.output
    db.session.refresh(world.connector_a)
    assert world.connector_a.settings == {"scenario": "healthy"}


def test_connectors_disable_command(runner, db, world):
    assert runner.invoke(args=["connectors", "disable", "org-a"]).exit_code == 0
    db.session.refresh(world.connector_a)
    assert world.connector_a.enabled is False

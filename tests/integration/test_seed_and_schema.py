"""Demo data and migrations."""
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from dashboard.extensions import db as _db
from dashboard.models import Connector, Organization, SyncRecord, User, utcnow
from dashboard.queues import alerts_queue, sync_queue


def _counts(db):
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(m)) for m in (Organization, User, SyncRecord))


def test_seed_demo_twice_duplicates_nothing(runner, db):
    """Given an empty database, when seed-demo runs twice, the second run adds nothing."""
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "global@platform.example" in first.output
    after_first = _counts(db)
    assert after_first[0] == 4 and after_first[1] == 5 and after_first[2] >= 800
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
    with _scratch_app(app, tmp_path).app_context():
        upgrade()
        with _db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), _db.metadata)
        _db.engine.dispose()
    assert diff == []


def test_upgrading_keeps_the_records_and_leaves_the_providers_to_the_registry(app, tmp_path):
    """Given a database at 0002 with a connector and its record, when it is upgraded to the head, then the
    record is still there (SQLite recreates the connectors table) and the database takes any provider name."""
    row = {"created_at": utcnow(), "approved_at": utcnow()}
    with _scratch_app(app, tmp_path).app_context():
        upgrade(revision="0002")
        with _db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO organizations (id, slug, name, consecutive_failure_threshold, error_threshold,"
                " error_window_hours, stale_after_hours, timezone, created_at)"
                " VALUES (1, 'org', 'Org', 3, 10, 1, 24, 'UTC', :created_at)"), row)
            conn.execute(sa.text(
                "INSERT INTO connectors (id, organization_id, name, provider, enabled, settings, created_at)"
                " VALUES (1, 1, 'Ledger', 'sandbox', :enabled, '{}', :created_at)"), {**row, "enabled": True})
            conn.execute(sa.text(
                "INSERT INTO sync_records (organization_id, connector_id, record_type, source_ref, volunteer,"
                " description, amount_minor, currency, approved_at, status, consecutive_failures, auto_attempts)"
                " VALUES (1, 1, 'expense_claim', 'EXP-1', '', '', 100, 'NOK', :approved_at, 'pending', 0, 0)"), row)
        upgrade()
        with _db.engine.begin() as conn:
            records = conn.scalar(sa.text("SELECT count(*) FROM sync_records"))
            conn.execute(sa.text("UPDATE connectors SET provider = 'not-registered'"))
        _db.engine.dispose()
    assert records == 1


def _scratch_app(app, tmp_path):  # type: ignore[no-untyped-def]
    """An app on an empty database of the test database's kind, for running the migrations."""
    from dashboard import create_app

    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite"):
        target = f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
    else:
        target = sa.engine.make_url(url).set(database=_scratch_postgres_db(url)).render_as_string(hide_password=False)
    return create_app({"SQLALCHEMY_DATABASE_URI": target, "REDIS_URL": app.config["REDIS_URL"],
                       "SECRET_KEY": app.config["SECRET_KEY"]})


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


def test_connectors_disable_command_queues_an_alert_check_as_the_settings_form_does(runner, world):
    """Given an enabled connector, when it is disabled from the command line, then its organization's alerts
    are checked again (a disabled connector raises no stale-sync alert) and no sync is queued."""
    assert runner.invoke(args=["connectors", "disable", "org-a"]).exit_code == 0
    assert [(job.func_name, job.args) for job in alerts_queue().jobs] == [
        ("jobs.alerts.check_organization", (world.org_a.id,))]
    assert sync_queue().jobs == []


def test_connectors_enable_and_scenario_commands_queue_a_sync_and_an_alert_check(runner, db, world):
    """Given a disabled connector, when it is enabled and then given a scenario from the command line,
    then each change queues a sync of the connector and an alert check of its organization."""
    world.connector_a.enabled = False
    db.session.commit()
    for args in (["connectors", "enable", "org-a"], ["connectors", "scenario", "org-a", "down"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
        assert [job.args for job in sync_queue().jobs] == [(world.connector_a.id,)]
        assert [job.args for job in alerts_queue().jobs] == [(world.org_a.id,)]
        sync_queue().empty()
        alerts_queue().empty()


def test_connectors_add_creates_a_disabled_connector_of_a_registered_provider(runner, db, world):
    result = runner.invoke(args=["connectors", "add", "org-a", "--provider", "tripletex", "--name", "Tripletex"])
    assert result.exit_code == 0, result.output
    connector = db.session.scalar(sa.select(Connector).where(Connector.provider == "tripletex"))
    assert (connector.organization_id, connector.name, connector.enabled) == (world.org_a.id, "Tripletex", False)


def test_connectors_add_refuses_an_unknown_provider(runner, db, world):
    result = runner.invoke(args=["connectors", "add", "org-a", "--provider", "poweroffice", "--name", "X"])
    assert result.exit_code != 0 and "poweroffice" in result.output

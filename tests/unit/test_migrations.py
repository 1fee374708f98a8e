"""The migration history stays one line: two heads would make `flask db upgrade` refuse to run."""
from alembic.config import Config
from alembic.script import ScriptDirectory

from dashboard.config import PROJECT_ROOT


def test_the_migrations_have_exactly_one_head():
    """Given every migration in dashboard/migrations, when Alembic reads them, then there is one head."""
    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "dashboard" / "migrations"))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"migration heads: {heads}; merge them (flask db merge)"

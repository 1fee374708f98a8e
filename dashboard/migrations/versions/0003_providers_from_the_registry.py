"""connector providers are the provider registry's, no longer a CHECK constraint

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 13:15:00

- `connectors`: `ck_connectors_provider` dropped. The model checks a connector's
  provider against `dashboard.sync.connectors.registry`, so adding a provider
  needs no migration. On SQLite the table is recreated (batch mode), which
  env.py runs with foreign keys off so that no record or batch goes with it.
"""
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('connectors', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_connectors_provider'), type_='check')


def downgrade():
    with op.batch_alter_table('connectors', schema=None) as batch_op:
        batch_op.create_check_constraint(batch_op.f('ck_connectors_provider'),
                                         "provider IN ('sandbox', 'http', 'external')")

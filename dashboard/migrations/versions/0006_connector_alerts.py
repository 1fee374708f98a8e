"""connector alerts: a rule for causes that are the connector's, not the record's

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 14:10:00
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

OLD = "rule IN ('consecutive_failures', 'error_threshold', 'stale_sync', 'platform_incident')"
NEW = "rule IN ('consecutive_failures', 'error_threshold', 'stale_sync', 'connector_failing', 'platform_incident')"


def upgrade():
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_alerts_rule'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_alerts_rule'), NEW)


def downgrade():
    op.execute("DELETE FROM alerts WHERE rule = 'connector_failing'")
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_alerts_rule'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_alerts_rule'), OLD)

"""quiet alerts: the error threshold's re-arm level, a daily notification budget, flapping alerts, and
notifications gathered into summaries

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 15:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

OLD_EVENTS = "event IN ('raised', 'resolved')"
NEW_EVENTS = "event IN ('raised', 'resolved', 'flapping', 'summary')"
OLD_KINDS = "kind IN ('raised', 'joined', 'notified', 'resolved', 'announced', 'folded', 'updated')"
NEW_KINDS = "kind IN ('raised', 'joined', 'notified', 'resolved', 'announced', 'folded', 'updated', 'gathered')"


def upgrade():
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_rearm_level', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('daily_notification_budget', sa.Integer(), server_default='6', nullable=False))
        batch_op.create_check_constraint(
            batch_op.f('ck_organizations_rearm_below_threshold'),
            "error_rearm_level IS NULL OR (error_rearm_level >= 0 AND error_rearm_level < error_threshold)")
        batch_op.create_check_constraint(batch_op.f('ck_organizations_budget_positive'),
                                         "daily_notification_budget >= 1")
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flapping', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index('ix_alerts_fingerprint_opened', ['fingerprint', 'opened_at'], unique=False)
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_alert_events_kind'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_alert_events_kind'), NEW_KINDS)
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.alter_column('alert_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('gathered_into_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('digest_key', sa.String(length=100), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_notifications_gathered_into_id_notifications'), 'notifications',
                                    ['gathered_into_id'], ['id'], ondelete='SET NULL')
        batch_op.create_unique_constraint(batch_op.f('uq_notifications_user_id_digest_key'),
                                          ['user_id', 'digest_key'])
        batch_op.drop_constraint(batch_op.f('ck_notifications_event'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_notifications_event'), NEW_EVENTS)
        batch_op.create_check_constraint(batch_op.f('ck_notifications_alert_or_digest'),
                                         "alert_id IS NOT NULL OR digest_key IS NOT NULL")
        batch_op.create_index('ix_notifications_user_org_created', ['user_id', 'organization_id', 'created_at'],
                              unique=False)
        batch_op.create_index('ix_notifications_gathered_into', ['gathered_into_id'], unique=False)


def downgrade():
    op.execute("DELETE FROM notifications WHERE alert_id IS NULL OR event IN ('flapping', 'summary')")
    op.execute("DELETE FROM alert_events WHERE kind = 'gathered'")
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_gathered_into')
        batch_op.drop_index('ix_notifications_user_org_created')
        batch_op.drop_constraint(batch_op.f('ck_notifications_alert_or_digest'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_notifications_event'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_notifications_event'), OLD_EVENTS)
        batch_op.drop_constraint(batch_op.f('uq_notifications_user_id_digest_key'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_notifications_gathered_into_id_notifications'), type_='foreignkey')
        batch_op.drop_column('digest_key')
        batch_op.drop_column('gathered_into_id')
        batch_op.alter_column('alert_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_alert_events_kind'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_alert_events_kind'), OLD_KINDS)
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_fingerprint_opened')
        batch_op.drop_column('flapping')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_organizations_budget_positive'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_organizations_rearm_below_threshold'), type_='check')
        batch_op.drop_column('daily_notification_budget')
        batch_op.drop_column('error_rearm_level')

"""reaching admins outside the app: emails, webhooks, maintenance windows; acknowledging, snoozing and
escalating alerts; each person's email preferences; reminded and escalated notifications

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 18:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

OLD_EVENTS = "event IN ('raised', 'resolved', 'flapping', 'summary')"
NEW_EVENTS = "event IN ('raised', 'resolved', 'flapping', 'summary', 'reminded', 'escalated')"
OLD_KINDS = "kind IN ('raised', 'joined', 'notified', 'resolved', 'announced', 'folded', 'updated', 'gathered')"
NEW_KINDS = ("kind IN ('raised', 'joined', 'notified', 'resolved', 'announced', 'folded', 'updated', 'gathered', "
             "'emailed', 'digested', 'webhook', 'acknowledged', 'snoozed', 'muted', 'reminded', 'escalated')")
STATUSES = "status IN ('pending', 'sending', 'sent', 'skipped', 'failed')"
CHOICES = "IN ('immediate', 'digest', 'never')"
OPEN_UNESCALATED = "status = 'open' AND escalated_at IS NULL AND acknowledged_at IS NULL"


def upgrade():
    op.create_table(
        'maintenance_windows',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('starts_at', sa.DateTime(), nullable=False),
        sa.Column('ends_at', sa.DateTime(), nullable=False),
        sa.Column('error_codes', sa.JSON(), nullable=False),
        sa.Column('record_types', sa.JSON(), nullable=False),
        sa.Column('reason', sa.String(length=300), server_default='', nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('ended_by_id', sa.Integer(), nullable=True),
        sa.Column('closed_at', sa.DateTime(), nullable=True),
        sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_maintenance_windows_ends_after_start')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'],
                                name=op.f('fk_maintenance_windows_created_by_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['ended_by_id'], ['users.id'],
                                name=op.f('fk_maintenance_windows_ended_by_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_maintenance_windows_organization_id_organizations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_windows')),
    )
    op.create_index('ix_maintenance_windows_org_ends', 'maintenance_windows', ['organization_id', 'ends_at'])
    op.create_table(
        'webhooks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=True),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('description', sa.String(length=200), server_default='', nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('secret', sa.String(length=100), nullable=False),
        sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('removed_at', sa.DateTime(), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_webhooks_created_by_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_webhooks_organization_id_organizations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhooks')),
    )
    op.create_index('ix_webhooks_org', 'webhooks', ['organization_id'])
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('webhook_id', sa.Integer(), nullable=False),
        sa.Column('alert_id', sa.Integer(), nullable=True),
        sa.Column('event', sa.String(length=20), nullable=False),
        sa.Column('message_id', sa.String(length=64), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=500), server_default='', nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint(STATUSES, name=op.f('ck_webhook_deliveries_status')),
        sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_webhook_deliveries_alert_id_alerts'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'],
                                name=op.f('fk_webhook_deliveries_webhook_id_webhooks'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
        sa.UniqueConstraint('message_id', name=op.f('uq_webhook_deliveries_message_id')),
        sa.UniqueConstraint('webhook_id', 'alert_id', 'event', name=op.f('uq_webhook_deliveries_webhook_id_alert_id_event')),
    )
    op.create_index('ix_webhook_deliveries_status_due', 'webhook_deliveries', ['status', 'due_at'])
    op.create_index('ix_webhook_deliveries_webhook_created', 'webhook_deliveries', ['webhook_id', 'created_at'])
    op.create_table(
        'email_messages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('notification_id', sa.Integer(), nullable=True),
        sa.Column('digest_key', sa.String(length=100), nullable=True),
        sa.Column('message_id', sa.String(length=250), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_error', sa.String(length=500), server_default='', nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('notification', 'digest')", name=op.f('ck_email_messages_kind')),
        sa.CheckConstraint(STATUSES, name=op.f('ck_email_messages_status')),
        sa.CheckConstraint('notification_id IS NOT NULL OR digest_key IS NOT NULL',
                           name=op.f('ck_email_messages_notification_or_digest')),
        sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'],
                                name=op.f('fk_email_messages_notification_id_notifications'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_email_messages_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_email_messages')),
        sa.UniqueConstraint('message_id', name=op.f('uq_email_messages_message_id')),
        sa.UniqueConstraint('notification_id', name=op.f('uq_email_messages_notification_id')),
        sa.UniqueConstraint('user_id', 'digest_key', name=op.f('uq_email_messages_user_id_digest_key')),
    )
    op.create_index('ix_email_messages_status_due', 'email_messages', ['status', 'due_at'])
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('acknowledgement_note', sa.String(length=500), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('snoozed_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('snoozed_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('muted_by_window_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_alerts_acknowledged_by_id_users'), 'users',
                                    ['acknowledged_by_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_alerts_snoozed_by_id_users'), 'users',
                                    ['snoozed_by_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_alerts_muted_by_window_id_maintenance_windows'),
                                    'maintenance_windows', ['muted_by_window_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index('ix_alerts_escalation_due', ['opened_at'], unique=False,
                              sqlite_where=sa.text(OPEN_UNESCALATED), postgresql_where=sa.text(OPEN_UNESCALATED))
        batch_op.create_index('ix_alerts_snoozed_until', ['snoozed_until'], unique=False,
                              sqlite_where=sa.text('snoozed_until IS NOT NULL'),
                              postgresql_where=sa.text('snoozed_until IS NOT NULL'))
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_alert_events_kind'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_alert_events_kind'), NEW_KINDS)
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_notifications_event'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_notifications_event'), NEW_EVENTS)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_raised', sa.String(length=10), server_default='immediate',
                                      nullable=False))
        batch_op.add_column(sa.Column('email_resolved', sa.String(length=10), server_default='immediate',
                                      nullable=False))
        batch_op.add_column(sa.Column('email_delay_minutes', sa.Integer(), server_default='10', nullable=False))
        batch_op.add_column(sa.Column('digest_minute', sa.Integer(), server_default='480', nullable=False))
        batch_op.add_column(sa.Column('digest_sent_at', sa.DateTime(), nullable=True))
        batch_op.create_check_constraint(batch_op.f('ck_users_email_raised'), f"email_raised {CHOICES}")
        batch_op.create_check_constraint(batch_op.f('ck_users_email_resolved'), f"email_resolved {CHOICES}")
        batch_op.create_check_constraint(batch_op.f('ck_users_email_delay_nonnegative'), "email_delay_minutes >= 0")
        batch_op.create_check_constraint(batch_op.f('ck_users_digest_minute_of_day'),
                                         "digest_minute >= 0 AND digest_minute < 1440")
    with op.batch_alter_table('platform_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalation_hours', sa.Integer(), server_default='24', nullable=False))
        batch_op.create_check_constraint(batch_op.f('ck_platform_settings_escalation_positive'),
                                         "escalation_hours >= 1")


def downgrade():
    with op.batch_alter_table('platform_settings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_platform_settings_escalation_positive'), type_='check')
        batch_op.drop_column('escalation_hours')
    with op.batch_alter_table('users', schema=None) as batch_op:
        for name in ('digest_minute_of_day', 'email_delay_nonnegative', 'email_resolved', 'email_raised'):
            batch_op.drop_constraint(batch_op.f(f'ck_users_{name}'), type_='check')
        for column in ('digest_sent_at', 'digest_minute', 'email_delay_minutes', 'email_resolved', 'email_raised'):
            batch_op.drop_column(column)
    op.execute("DELETE FROM notifications WHERE event IN ('reminded', 'escalated')")
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_notifications_event'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_notifications_event'), OLD_EVENTS)
    op.execute("DELETE FROM alert_events WHERE kind IN ('emailed', 'digested', 'webhook', 'acknowledged', "
               "'snoozed', 'muted', 'reminded', 'escalated')")
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_alert_events_kind'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_alert_events_kind'), OLD_KINDS)
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_snoozed_until')
        batch_op.drop_index('ix_alerts_escalation_due')
        batch_op.drop_constraint(batch_op.f('fk_alerts_muted_by_window_id_maintenance_windows'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_alerts_snoozed_by_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_alerts_acknowledged_by_id_users'), type_='foreignkey')
        for column in ('escalated_at', 'muted_by_window_id', 'snoozed_by_id', 'snoozed_until',
                       'acknowledgement_note', 'acknowledged_by_id', 'acknowledged_at'):
            batch_op.drop_column(column)
    op.drop_index('ix_email_messages_status_due', table_name='email_messages')
    op.drop_table('email_messages')
    op.drop_index('ix_webhook_deliveries_webhook_created', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_status_due', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_index('ix_webhooks_org', table_name='webhooks')
    op.drop_table('webhooks')
    op.drop_index('ix_maintenance_windows_org_ends', table_name='maintenance_windows')
    op.drop_table('maintenance_windows')

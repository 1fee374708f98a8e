"""operate without a shell: invitations, password resets, the append-only audit log (record actions move into
it), organizations' and people's languages, archived organizations and removed connectors

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 18:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

PENDING = "accepted_at IS NULL AND revoked_at IS NULL"
CONTENT_COLUMNS = "at, actor_email, action, target_type, target_id, target_label, reason, detail, source_ip"
REFERENCES_SET = ("(NEW.actor_id IS NOT NULL AND NEW.actor_id IS NOT OLD.actor_id) OR "
                  "(NEW.organization_id IS NOT NULL AND NEW.organization_id IS NOT OLD.organization_id) OR "
                  "(NEW.record_id IS NOT NULL AND NEW.record_id IS NOT OLD.record_id)")
"""An update that is not a foreign key's ON DELETE SET NULL: refused, like any change of an entry's content."""
APPEND_ONLY_SQLITE = [
    f"CREATE TRIGGER audit_entries_content_fixed BEFORE UPDATE OF {CONTENT_COLUMNS} ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
    f"CREATE TRIGGER audit_entries_references_fixed BEFORE UPDATE OF actor_id, organization_id, record_id "
    f"ON audit_entries WHEN {REFERENCES_SET} BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END",
]
APPEND_ONLY_POSTGRESQL = [
    "CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit entries are append-only'; END $$",
    f"CREATE TRIGGER audit_entries_content_fixed BEFORE UPDATE OF {CONTENT_COLUMNS} ON audit_entries "
    "FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()",
    "CREATE TRIGGER audit_entries_references_fixed BEFORE UPDATE OF actor_id, organization_id, record_id "
    f"ON audit_entries FOR EACH ROW WHEN ({REFERENCES_SET.replace('IS NOT OLD', 'IS DISTINCT FROM OLD')}) "
    "EXECUTE FUNCTION audit_entries_append_only()",
]


def upgrade():
    op.create_table(
        'audit_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor_email', sa.String(length=254), server_default='', nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('target_type', sa.String(length=30), server_default='', nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=True),
        sa.Column('target_label', sa.String(length=300), server_default='', nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('source_ip', sa.String(length=45), server_default='', nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_audit_entries_actor_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_audit_entries_organization_id_organizations'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['record_id'], ['sync_records.id'], name=op.f('fk_audit_entries_record_id_sync_records'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries')),
    )
    op.create_index('ix_audit_entries_org_at', 'audit_entries', ['organization_id', 'at', 'id'])
    op.create_index('ix_audit_entries_at', 'audit_entries', ['at', 'id'])
    op.create_index('ix_audit_entries_record_at', 'audit_entries', ['record_id', 'at'])
    op.execute(
        "INSERT INTO audit_entries (at, actor_id, actor_email, organization_id, action, target_type, target_id, "
        "target_label, record_id, reason, detail, source_ip) "
        "SELECT a.created_at, a.user_id, COALESCE(u.email, ''), r.organization_id, a.action, 'record', r.id, "
        "r.source_ref, r.id, a.reason, '{}', '' FROM record_actions a JOIN sync_records r ON r.id = a.record_id "
        "LEFT JOIN users u ON u.id = a.user_id ORDER BY a.created_at, a.id")
    with op.batch_alter_table('record_actions', schema=None) as batch_op:
        batch_op.drop_index('ix_record_actions_record_time')
    op.drop_table('record_actions')
    postgresql = op.get_bind().dialect.name == 'postgresql'
    for statement in APPEND_ONLY_POSTGRESQL if postgresql else APPEND_ONLY_SQLITE:
        op.execute(statement)

    op.create_table(
        'invitations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('invited_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('accepted_at', sa.DateTime(), nullable=True),
        sa.Column('accepted_by_id', sa.Integer(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['accepted_by_id'], ['users.id'], name=op.f('fk_invitations_accepted_by_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['invited_by_id'], ['users.id'], name=op.f('fk_invitations_invited_by_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_invitations_organization_id_organizations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_invitations_token_hash')),
    )
    op.create_index('ix_invitations_org_created', 'invitations', ['organization_id', 'created_at'])
    op.create_index('uq_invitations_pending', 'invitations', ['organization_id', 'email'], unique=True,
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))
    op.create_table(
        'password_resets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_resets_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_password_resets')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_password_resets_token_hash')),
    )
    op.create_index('ix_password_resets_user_created', 'password_resets', ['user_id', 'created_at'])
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=10), server_default='en', nullable=False))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(), nullable=True))
        batch_op.create_check_constraint(batch_op.f('ck_organizations_language'), "language IN ('nb', 'en')")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=10), nullable=True))
        batch_op.create_check_constraint(batch_op.f('ck_users_language'),
                                         "language IS NULL OR language IN ('nb', 'en')")
    with op.batch_alter_table('connectors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removed_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('connectors', schema=None) as batch_op:
        batch_op.drop_column('removed_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_users_language'), type_='check')
        batch_op.drop_column('language')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_organizations_language'), type_='check')
        batch_op.drop_column('archived_at')
        batch_op.drop_column('language')
    op.drop_index('ix_password_resets_user_created', table_name='password_resets')
    op.drop_table('password_resets')
    op.drop_index('uq_invitations_pending', table_name='invitations')
    op.drop_index('ix_invitations_org_created', table_name='invitations')
    op.drop_table('invitations')
    op.create_table(
        'record_actions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint("action IN ('retry', 'exclude', 'include')", name=op.f('ck_record_actions_action')),
        sa.ForeignKeyConstraint(['record_id'], ['sync_records.id'], name=op.f('fk_record_actions_record_id_sync_records'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_record_actions_user_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_record_actions')),
    )
    with op.batch_alter_table('record_actions', schema=None) as batch_op:
        batch_op.create_index('ix_record_actions_record_time', ['record_id', 'created_at'], unique=False)
    op.execute(
        "INSERT INTO record_actions (record_id, user_id, action, reason, created_at) "
        "SELECT record_id, actor_id, action, reason, at FROM audit_entries "
        "WHERE record_id IS NOT NULL AND action IN ('retry', 'exclude', 'include') ORDER BY at, id")
    postgresql = op.get_bind().dialect.name == 'postgresql'
    for trigger in ('audit_entries_content_fixed', 'audit_entries_references_fixed'):
        op.execute(f"DROP TRIGGER {trigger}" + (" ON audit_entries" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION audit_entries_append_only()")
    op.drop_index('ix_audit_entries_record_at', table_name='audit_entries')
    op.drop_index('ix_audit_entries_at', table_name='audit_entries')
    op.drop_index('ix_audit_entries_org_at', table_name='audit_entries')
    op.drop_table('audit_entries')

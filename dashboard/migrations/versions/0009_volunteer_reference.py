"""volunteer reference: who is owed a record's money, as the platform's opaque reference; and the index of the
records table's default view (what needs attention, newest problem first)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sync_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('volunteer_ref', sa.String(length=100), nullable=True))
    op.create_index('ix_sync_records_org_status_problem', 'sync_records',
                    ['organization_id', 'status', sa.text('coalesce(last_attempt_at, approved_at)'), 'id'])


def downgrade():
    op.drop_index('ix_sync_records_org_status_problem', table_name='sync_records')
    with op.batch_alter_table('sync_records', schema=None) as batch_op:
        batch_op.drop_column('volunteer_ref')

"""the sync log's write: the error-code and due-retry indexes of sync_records hold the failing records only

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 21:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

INDEXES = [
    ('ix_sync_records_org_error_amount', ['organization_id', 'last_error_code', 'amount_minor', 'id'],
     'last_error_code IS NOT NULL'),
    ('ix_sync_records_org_error_approved', ['organization_id', 'last_error_code', 'approved_at', 'id'],
     'last_error_code IS NOT NULL'),
    ('ix_sync_records_connector_due', ['connector_id', 'status', 'next_attempt_at'], 'next_attempt_at IS NOT NULL'),
]


def upgrade():
    for name, columns, condition in INDEXES:
        op.drop_index(name, table_name='sync_records')
        op.create_index(name, 'sync_records', columns, unique=False,
                        sqlite_where=sa.text(condition), postgresql_where=sa.text(condition))


def downgrade():
    for name, columns, _condition in INDEXES:
        op.drop_index(name, table_name='sync_records')
        op.create_index(name, 'sync_records', columns, unique=False)

"""volunteer reference: who is owed a record's money, as the platform's opaque reference

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


def downgrade():
    with op.batch_alter_table('sync_records', schema=None) as batch_op:
        batch_op.drop_column('volunteer_ref')

"""the platform page's ranking: an index of the hours with failures, covering their counts

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_hourly_attempt_counts_failing', 'hourly_attempt_counts',
                    ['organization_id', 'hour', 'failures'], unique=False,
                    sqlite_where=sa.text('failures > 0'), postgresql_where=sa.text('failures > 0'))


def downgrade():
    op.drop_index('ix_hourly_attempt_counts_failing', table_name='hourly_attempt_counts')

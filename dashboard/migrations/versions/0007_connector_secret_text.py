"""connector secrets hold OAuth tokens as JSON: text, not 500 characters

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 14:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('connectors', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.String(length=500), type_=sa.Text(), existing_nullable=True)


def downgrade():
    with op.batch_alter_table('connectors', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.Text(), type_=sa.String(length=500), existing_nullable=True)

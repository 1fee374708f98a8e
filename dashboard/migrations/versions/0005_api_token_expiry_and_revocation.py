"""API tokens can expire and be revoked

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00

- `api_tokens.expires_at`: when the token stops working (NULL: never).
- `api_tokens.revoked_at`: when an administrator revoked it (NULL: not revoked).
  Existing tokens keep working: both columns start NULL.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('revoked_at')
        batch_op.drop_column('expires_at')

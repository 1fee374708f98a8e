"""sessions are revocable; the per-account sign-in lock gives way to rate limits

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 13:30:00

- `users.session_version`: bumped to end every session of a user.
- `users.failed_logins`, `users.locked_until`: dropped; sign-in is rate limited
  per address and per account instead (a lock let anyone lock anyone out).
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('locked_until')


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_column('session_version')

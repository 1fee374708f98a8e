"""attempts are facts with an identity and an order; batches know when they arrived

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 13:00:00

- `sync_attempts`: unique (record_id, attempted_at), replacing the plain index on
  the same columns; duplicates already in the log (the same batch re-sent
  without an Idempotency-Key) are removed first, keeping the first written.
  `late` marks attempts that arrived after a newer one of their record.
- `sync_batches`: `received_at` (the sweep's clock; existing batches take their
  `finished_at`), `request_hash` for Idempotency-Key reuse with another body.
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        "DELETE FROM sync_attempts WHERE id IN ("
        " SELECT later.id FROM sync_attempts AS later JOIN sync_attempts AS earlier"
        " ON earlier.record_id = later.record_id AND earlier.attempted_at = later.attempted_at"
        " AND earlier.id < later.id)"
    )
    with op.batch_alter_table('sync_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('late', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.drop_index('ix_sync_attempts_record_time')
        batch_op.create_unique_constraint(batch_op.f('uq_sync_attempts_record_id_attempted_at'),
                                          ['record_id', 'attempted_at'])

    with op.batch_alter_table('sync_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('received_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('request_hash', sa.String(length=64), nullable=True))
    op.execute("UPDATE sync_batches SET received_at = finished_at")
    with op.batch_alter_table('sync_batches', schema=None) as batch_op:
        batch_op.alter_column('received_at', existing_type=sa.DateTime(), nullable=False)
        batch_op.drop_index('ix_sync_batches_unevaluated', sqlite_where=sa.text('evaluated_at IS NULL'),
                            postgresql_where=sa.text('evaluated_at IS NULL'))
        batch_op.create_index('ix_sync_batches_unevaluated', ['received_at'], unique=False,
                              sqlite_where=sa.text('evaluated_at IS NULL'),
                              postgresql_where=sa.text('evaluated_at IS NULL'))


def downgrade():
    with op.batch_alter_table('sync_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_batches_unevaluated', sqlite_where=sa.text('evaluated_at IS NULL'),
                            postgresql_where=sa.text('evaluated_at IS NULL'))
        batch_op.create_index('ix_sync_batches_unevaluated', ['finished_at'], unique=False,
                              sqlite_where=sa.text('evaluated_at IS NULL'),
                              postgresql_where=sa.text('evaluated_at IS NULL'))
        batch_op.drop_column('request_hash')
        batch_op.drop_column('received_at')

    with op.batch_alter_table('sync_attempts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_sync_attempts_record_id_attempted_at'), type_='unique')
        batch_op.create_index('ix_sync_attempts_record_time', ['record_id', 'attempted_at'], unique=False)
        batch_op.drop_column('late')

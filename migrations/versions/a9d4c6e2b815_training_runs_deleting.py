"""training_runs.deleting and deleted_at: deleting a model can be undone

A deleted model is only marked (hidden from every page, list and /predict) for DATASET_UNDO_SECONDS, so
that whoever deleted it can bring it back; the worker's maintenance then removes its row and files.
deleted_at is indexed for that search. Existing runs are not being deleted.

Revision ID: a9d4c6e2b815
Revises: d7a3e9b14c62
Create Date: 2026-12-20 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'a9d4c6e2b815'
down_revision = 'd7a3e9b14c62'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleting', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_training_runs_deleted_at'), ['deleted_at'], unique=False)


def downgrade():
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_runs_deleted_at'))
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('deleting')

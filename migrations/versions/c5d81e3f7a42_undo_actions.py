"""undo: undo_actions and trashed_images (labeling-grid actions a user can take back for a while)

Revision ID: c5d81e3f7a42
Revises: a4c7e2f19b36
Create Date: 2026-11-26 18:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'c5d81e3f7a42'
down_revision = 'a4c7e2f19b36'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'undo_actions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('dataset_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('undo_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_undo_actions_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_undo_actions_created_at'), ['created_at'], unique=False)
    op.create_table(
        'trashed_images',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('undo_id', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('row', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['undo_id'], ['undo_actions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('trashed_images', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trashed_images_undo_id'), ['undo_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_trashed_images_sha256'), ['sha256'], unique=False)


def downgrade():
    op.drop_table('trashed_images')
    op.drop_table('undo_actions')

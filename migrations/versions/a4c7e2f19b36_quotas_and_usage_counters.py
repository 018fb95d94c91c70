"""quotas: per-user usage counters and quota overrides on users, index on training_runs.created_by_id

Revision ID: a4c7e2f19b36
Revises: f4c2b8e91a37
Create Date: 2026-11-27 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'a4c7e2f19b36'
down_revision = 'f4c2b8e91a37'
branch_labels = None
depends_on = None

QUOTA_COLUMNS = ('quota_storage_mb', 'quota_images', 'quota_datasets', 'quota_models', 'quota_active_runs')


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_count', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('image_bytes', sa.BigInteger(), server_default='0', nullable=False))
        for name in QUOTA_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_runs_created_by_id'), ['created_by_id'], unique=False)
    # The counters start from what the users' datasets hold today (once; from then on kept by the app).
    op.execute(
        "UPDATE users SET "
        "image_count = (SELECT count(images.id) FROM images JOIN datasets ON images.dataset_id = datasets.id "
        "WHERE datasets.owner_id = users.id), "
        "image_bytes = (SELECT coalesce(sum(images.size_bytes), 0) FROM images JOIN datasets "
        "ON images.dataset_id = datasets.id WHERE datasets.owner_id = users.id)"
    )


def downgrade():
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_runs_created_by_id'))
    with op.batch_alter_table('users', schema=None) as batch_op:
        for name in reversed(QUOTA_COLUMNS):
            batch_op.drop_column(name)
        batch_op.drop_column('image_bytes')
        batch_op.drop_column('image_count')

"""run_frozen_images: a started run's images frozen in one statement (its job prepares run_samples);
imports.undo_action_id: the undo of a background import of labels, offered on its result

Revision ID: e8c3f1a5d274
Revises: b9e2c47d1f06
Create Date: 2027-01-21 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e8c3f1a5d274'
down_revision = 'b9e2c47d1f06'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('run_frozen_images',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('label_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['training_runs.id'], name=op.f('fk_run_frozen_images_run_id_training_runs'),
                            ondelete='CASCADE')
    )
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('undo_action_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_imports_undo_action_id_undo_actions'), 'undo_actions',
                                    ['undo_action_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_imports_undo_action_id_undo_actions'), type_='foreignkey')
        batch_op.drop_column('undo_action_id')
    op.drop_table('run_frozen_images')

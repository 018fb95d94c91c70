"""expert checks: validation predictions (thresholds are chosen on them) and "Train more" runs

training_runs.val_predictions keeps the final model's answer on every validation image (deferred,
like test_predictions), so the threshold curve is computed on validation; the test images are only
reported. training_runs.continued_from_id names the run whose checkpoint a "Train more" run continues.
Existing curves stay as they are: they carry no "split" key, and the pages say they need a retrain.

Revision ID: f4c2b8e91a37
Revises: 5d2f8a6c1e93
Create Date: 2026-12-10 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'f4c2b8e91a37'
down_revision = '5d2f8a6c1e93'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('val_predictions', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('continued_from_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_training_runs_continued_from_id_training_runs'),
                                    'training_runs', ['continued_from_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_training_runs_continued_from_id_training_runs'), type_='foreignkey')
        batch_op.drop_column('continued_from_id')
        batch_op.drop_column('val_predictions')

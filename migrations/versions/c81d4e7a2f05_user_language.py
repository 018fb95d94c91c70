"""users.locale: the language a user chose with the switcher (NULL = follow the browser)

Revision ID: c81d4e7a2f05
Revises: c5d81e3f7a42
Create Date: 2026-11-26 18:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'c81d4e7a2f05'
down_revision = 'c5d81e3f7a42'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=10), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locale')

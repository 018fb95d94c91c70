"""imports.message_line: why an import stopped, as a stored line the page shows in the reader's language

Revision ID: d7a3e9b14c62
Revises: c81d4e7a2f05
Create Date: 2026-11-27 01:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'd7a3e9b14c62'
down_revision = 'c81d4e7a2f05'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_line', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.drop_column('message_line')

"""users.deleted_at: a deleted account waits, disabled and hidden, until its datasets are purged

Deleting an account (Admin -> Users, the account page, `flask delete-user`) marks the row at once; the
worker's maintenance removes it after the purge of the datasets it owned, clearing the history columns that
name it in short transactions. Existing accounts are not deleted.

Revision ID: d2b8f4a61e93
Revises: b3f7d2a91c64
Create Date: 2027-01-12 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd2b8f4a61e93'
down_revision = 'b3f7d2a91c64'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')

"""users.reset_token_hash and reset_expires_at: one-time password reset links made by an admin

Only the SHA-256 of a link's token is stored; the unique index finds the account from a link and keeps two
accounts from sharing one. Existing accounts have no link.

Revision ID: b3f7d2a91c64
Revises: a9d4c6e2b815
Create Date: 2027-01-05 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b3f7d2a91c64'
down_revision = 'a9d4c6e2b815'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reset_token_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reset_expires_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_users_reset_token_hash'), ['reset_token_hash'], unique=True)


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_reset_token_hash'))
        batch_op.drop_column('reset_expires_at')
        batch_op.drop_column('reset_token_hash')

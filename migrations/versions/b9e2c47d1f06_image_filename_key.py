"""images.filename_key: find images by file name in the labeling grid and the API

The file name case-folded (NFC, every script: SQLite's LIKE and lower() fold ASCII only), with an index
(dataset_id, label_id, filename_key) that a substring search reads instead of the table rows. Existing
rows are filled in, a chunk at a time.

Revision ID: b9e2c47d1f06
Revises: d2b8f4a61e93
Create Date: 2027-01-20 10:00:00

"""
import unicodedata

from alembic import op
import sqlalchemy as sa


revision = 'b9e2c47d1f06'
down_revision = 'd2b8f4a61e93'
branch_labels = None
depends_on = None

CHUNK = 2000
KEY_LENGTH = 255

images = sa.table('images', sa.column('id', sa.Integer), sa.column('filename', sa.String),
                  sa.column('filename_key', sa.String))


def _key(name):
    """app.models.filename_key, copied: a migration must not change when the app's code does."""
    return unicodedata.normalize('NFC', name or '').casefold()[:KEY_LENGTH]


def _backfill(conn):
    """Every row's key, CHUNK rows per statement, found by key (no OFFSET)."""
    last = 0
    update = (images.update().where(images.c.id == sa.bindparam('row_id'))
              .values(filename_key=sa.bindparam('key')))
    while True:
        rows = conn.execute(sa.select(images.c.id, images.c.filename).where(images.c.id > last)
                            .order_by(images.c.id).limit(CHUNK)).all()
        if not rows:
            return
        conn.execute(update, [{'row_id': row_id, 'key': _key(name)} for row_id, name in rows])
        last = rows[-1][0]


def upgrade():
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('filename_key', sa.String(length=KEY_LENGTH), nullable=True))
    _backfill(op.get_bind())
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.alter_column('filename_key', existing_type=sa.String(length=KEY_LENGTH), nullable=False)
        batch_op.create_index('ix_images_dataset_label_name', ['dataset_id', 'label_id', 'filename_key', 'id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index('ix_images_dataset_label_name')
        batch_op.drop_column('filename_key')

"""scale: run_samples table, deferred test results and threshold curve, grid indexes

The frozen sample list leaves training_runs.snapshot for its own table (one row per image), so the
run row that pages poll every second stays small; snapshot keeps classes and per-class split counts.
The per-image test predictions leave run.metrics for their own column, beside the threshold curve
computed from them. The labeling grid gets indexes that serve its keyset pages.

Revision ID: e3a91c5d7b20
Revises: b7e41c2d9a10
Create Date: 2026-12-02 10:00:00

"""
from bisect import bisect_left

from alembic import op
import sqlalchemy as sa


revision = 'e3a91c5d7b20'
down_revision = 'b7e41c2d9a10'
branch_labels = None
depends_on = None

PARTS = ('train', 'val', 'test')
CHUNK = 2000
GALLERY_KEPT = 48
GRID = 1000

runs = sa.table(
    'training_runs', sa.column('id', sa.Integer), sa.column('status', sa.String),
    sa.column('snapshot', sa.JSON), sa.column('metrics', sa.JSON),
    sa.column('test_predictions', sa.JSON), sa.column('threshold_curve', sa.JSON))
run_samples = sa.table(
    'run_samples', sa.column('run_id', sa.Integer), sa.column('position', sa.Integer),
    sa.column('image_id', sa.Integer), sa.column('class_index', sa.Integer),
    sa.column('sha256', sa.String), sa.column('part', sa.String))


def upgrade():
    op.create_table('run_samples',
    sa.Column('run_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('class_index', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('part', sa.String(length=5), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['training_runs.id'], name=op.f('fk_run_samples_run_id_training_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'position', name=op.f('pk_run_samples'))
    )
    op.add_column('training_runs', sa.Column('test_predictions', sa.JSON(), nullable=True))
    op.add_column('training_runs', sa.Column('threshold_curve', sa.JSON(), nullable=True))
    op.drop_index('ix_images_dataset_label', table_name='images')
    op.create_index('ix_images_dataset_id', 'images', ['dataset_id', 'id'], unique=False)
    op.create_index('ix_images_dataset_label_id', 'images', ['dataset_id', 'label_id', 'id'], unique=False)
    conn = op.get_bind()
    for run_id in list(conn.scalars(sa.select(runs.c.id).order_by(runs.c.id))):
        _move_out(conn, run_id)


def _move_out(conn, run_id):
    """One run: its samples into run_samples, its snapshot down to the summary, its predictions out of
    metrics (with the threshold curve computed from them)."""
    snapshot, metrics, status = conn.execute(
        sa.select(runs.c.snapshot, runs.c.metrics, runs.c.status).where(runs.c.id == run_id)).one()
    snapshot, metrics = dict(snapshot or {}), dict(metrics or {})
    samples, split = snapshot.pop('samples', None) or [], snapshot.pop('split', None) or {}
    part_of = {int(i): part for part in PARTS for i in split.get(part, []) if 0 <= int(i) < len(samples)}
    rows = [{'run_id': run_id, 'position': i, 'image_id': int(s[0]), 'class_index': int(s[1]),
             'sha256': str(s[2]), 'part': part_of.get(i, 'train')} for i, s in enumerate(samples)]
    for start in range(0, len(rows), CHUNK):
        conn.execute(run_samples.insert(), rows[start:start + CHUNK])
    classes = snapshot.get('classes') or []
    counts = [[0, 0, 0] for _ in classes]
    for row in rows:
        if 0 <= row['class_index'] < len(counts):
            counts[row['class_index']][PARTS.index(row['part'])] += 1
    snapshot.update({'counts': counts, 'total': len(rows)})
    values = {'snapshot': snapshot}
    predictions = metrics.pop('predictions', None) or None
    if predictions is not None or 'misclassified' in metrics:
        wrong = metrics.get('misclassified') or []
        count = sum(1 for p in predictions if p['true'] != p['predicted']) if predictions else len(wrong)
        metrics.update({'misclassified': wrong[:GALLERY_KEPT], 'misclassified_count': count})
        values['metrics'] = metrics
    if predictions:
        values['test_predictions'] = predictions
        if status == 'succeeded':
            values['threshold_curve'] = _curve(predictions)
    conn.execute(runs.update().where(runs.c.id == run_id).values(**values))


def _confidence(row):
    return 1.0 if row.get('confidence') is None else float(row['confidence'])


def _curve(predictions):
    """The same numbers as app.blueprints.training.thresholds.curve_grid (copied: a migration must not
    change when the app's code does)."""
    every = sorted(_confidence(r) for r in predictions)
    right = sorted(_confidence(r) for r in predictions if r['true'] == r['predicted'])
    grid = [[len(every) - bisect_left(every, i / GRID), len(right) - bisect_left(right, i / GRID)]
            for i in range(GRID + 1)]
    return {'total': len(every), 'grid': grid}


def downgrade():
    conn = op.get_bind()
    for run_id in list(conn.scalars(sa.select(runs.c.id).order_by(runs.c.id))):
        _move_back(conn, run_id)
    op.drop_index('ix_images_dataset_label_id', table_name='images')
    op.drop_index('ix_images_dataset_id', table_name='images')
    op.create_index('ix_images_dataset_label', 'images', ['dataset_id', 'label_id'], unique=False)
    with op.batch_alter_table('training_runs', schema=None) as batch_op:
        batch_op.drop_column('threshold_curve')
        batch_op.drop_column('test_predictions')
    op.drop_table('run_samples')


def _move_back(conn, run_id):
    snapshot, metrics, predictions = conn.execute(
        sa.select(runs.c.snapshot, runs.c.metrics, runs.c.test_predictions).where(runs.c.id == run_id)).one()
    snapshot, metrics = dict(snapshot or {}), dict(metrics or {})
    samples, split = [], {part: [] for part in PARTS}
    for position, image_id, class_index, sha, part in conn.execute(
            sa.select(run_samples.c.position, run_samples.c.image_id, run_samples.c.class_index,
                      run_samples.c.sha256, run_samples.c.part)
            .where(run_samples.c.run_id == run_id).order_by(run_samples.c.position)):
        samples.append([image_id, class_index, sha])
        split[part].append(position)
    for key in ('counts', 'total'):
        snapshot.pop(key, None)
    snapshot.update({'samples': samples, 'split': split})
    if predictions:
        metrics['predictions'] = predictions
    metrics.pop('misclassified_count', None)
    conn.execute(runs.update().where(runs.c.id == run_id).values(snapshot=snapshot, metrics=metrics))

"""The decode pipeline across groups of files (pages): one pool, batches within each group, decoded ahead."""
from __future__ import annotations

import numpy as np

from app.ml.architectures import get_architecture
from app.ml.pipeline import DecodeSpec, decoded_batches, decoded_groups

INFO = get_architecture("efficientnet_lite0")


def test_groups_batch_as_decoded_batches_does_per_group_lazily_and_with_one_pool(toy_set, tmp_path):
    samples, _ = toy_set
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    paths = [s.path for s in samples]
    groups = [paths[:5], [], [str(broken)] + paths[5:9], paths[9:10], paths[10:17]]
    spec = DecodeSpec(32, INFO.mean, INFO.std, batch_size=3, threads=2, ahead=1, skip_unreadable=True)
    pulled = []

    def lazily():
        for number, group in enumerate(groups):
            pulled.append(number)
            yield number, group

    walk = decoded_groups(lazily(), lambda group: group[1], spec)
    first_group, first = next(walk)
    assert first_group[0] == 0 and pulled == [0]  # 2 batches pending: both from the first group
    got = [(first_group[0], first)] + [(group[0], batch) for group, batch in walk]
    expected = [(number, batch) for number, group in enumerate(groups)
                for batch in decoded_batches(group, range(len(group)), spec)]
    assert [(n, b.indices, b.unreadable) for n, b in got] == [(n, b.indices, b.unreadable) for n, b in expected]
    assert [n for n, _ in got] == [0, 0, 2, 2, 3, 4, 4, 4]
    assert all(np.array_equal(a.images, b.images) for (_, a), (_, b) in zip(got, expected))


def test_closing_early_stops_reading_groups(toy_set):
    samples, _ = toy_set
    paths = [s.path for s in samples]
    spec = DecodeSpec(32, INFO.mean, INFO.std, batch_size=2, threads=2, ahead=1)
    pulled = []

    def lazily():
        for start in range(0, len(paths), 4):
            pulled.append(start)
            yield paths[start:start + 4]

    walk = decoded_groups(lazily(), lambda group: group, spec)
    next(walk)
    walk.close()
    assert pulled == [0]

"""Shared helpers for the benchmark scripts (not tests): data loading, seeding a studio and the result table."""
from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.ml import Sample  # noqa: E402

DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "hymenoptera"
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}


def image_folder(root: Path, start_id: int = 0) -> tuple[list[Sample], list[str]]:
    """ImageFolder layout root/<class>/<image> -> samples, sorted class names."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    samples = []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() in IMAGE_EXTS:
                samples.append(Sample(image_id=start_id + len(samples), path=str(path), label=label))
    return samples, classes


def seed_dataset(user, images, class_names: list[str], name: str = "generated") -> int:
    """A dataset of `user` holding `images`, (path, class index) pairs of generated 320x240 JPEGs
    (bench/_features.py): one class per name, each file written to storage and added as a labelled row.
    Call inside an app context; commits. Returns the dataset's id."""
    from app.extensions import db
    from app.filestore import image_key
    from app.models import Dataset, Image, Label
    from app.storage import get_storage

    dataset = Dataset(owner_id=user.id, name=name, description="")
    db.session.add(dataset)
    db.session.flush()
    labels = [Label(dataset_id=dataset.id, name=label, position=k) for k, label in enumerate(class_names)]
    db.session.add_all(labels)
    db.session.flush()
    storage = get_storage()
    for path, label in images:
        data = Path(path).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        storage.write(image_key(sha), data)
        db.session.add(Image(dataset_id=dataset.id, sha256=sha, label_id=labels[label].id, filename=Path(path).name,
                             width=320, height=240, size_bytes=len(data), format="JPEG", uploaded_by_id=user.id,
                             label_source="user"))
    db.session.commit()
    return dataset.id


def warm_file_cache(samples) -> None:
    """Read every file once so neither measured pass pays for cold disk reads."""
    for s in samples:
        with open(s.path, "rb") as fh:
            fh.read()


def median_ms(*calls, repeats: int) -> list[float]:
    """Median milliseconds of each call over `repeats` runs, after one warm-up run each; several calls
    are interleaved (a, b, a, b, ...) so that the load of this shared machine drifts over all of them alike."""
    times: list[list[float]] = [[] for _ in calls]
    for call in calls:
        call()  # warm (the first call may import torch & co, start the embedded Redis, fill caches)
    for _ in range(repeats):
        for call, seen in zip(calls, times):
            started = time.perf_counter()
            call()
            seen.append((time.perf_counter() - started) * 1000)
    return [statistics.median(seen) for seen in times]


def row(figure: str, value: float, target: str, passed: bool) -> dict:
    return {"figure": figure, "value": value, "target": target, "passed": bool(passed)}


def print_table(rows: list[dict], title: str) -> None:
    print(f"\n{title}  (torch threads: {os.environ.get('OMP_NUM_THREADS', 'default')})")
    print(f"{'figure':<58} {'value':>10}  {'target':<10} result")
    for r in rows:
        value = f"{r['value']:>10.3f}" if isinstance(r["value"], (int, float)) else f"{r['value']:>10}"
        verdict = "info" if r["passed"] is None else ("PASS" if r["passed"] else "FAIL")
        print(f"{r['figure']:<58} {value}  {r['target']:<10} {verdict}")

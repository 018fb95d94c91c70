"""Shared helpers for the benchmark scripts (not tests): data loading and the result table."""
from __future__ import annotations

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

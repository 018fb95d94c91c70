"""Benchmark: reading a dataset's images through the S3 backend's local cache, against the local folder.

Usage: python bench/storage_reads.py [path]   (default ../shared/data/hymenoptera from the repo root)

Every photo of the set (398 hymenoptera JPEGs) is read the way training reads it (app.ml.data.load_rgb
on a reference, 224 px), one thread:
- floor: the files as local paths (the local backend), warm in the page cache;
- cold: s3:// references to a bucket on moto's S3 server (in this process), empty cache: each image is
  fetched once (info: what the first epoch on a new worker costs against a real endpoint's latency);
- warm: the same references again, every image a cache hit: what every later epoch costs.
warm ratio = floor / warm, target >= 0.9 (a later epoch costs about what the local folder costs).
Five alternating repeats of floor and warm; the median is reported.
"""
from __future__ import annotations

import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import DEFAULT_DATA, image_folder, print_table, row, warm_file_cache  # noqa: E402

SIZE, REPEATS = 224, 5


def _read_all(refs: list[str]) -> float:
    from app.ml.data import load_rgb

    started = time.perf_counter()
    for ref in refs:
        load_rgb(ref, SIZE)
    return time.perf_counter() - started


def _bucket_store(samples, root: Path):
    """An S3 store on a moto server in this process, holding every image under its sha256 key."""
    import boto3
    from moto.server import ThreadedMotoServer

    from app.filestore import image_key, make_store

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    creds = {"access_key": "bench", "secret_key": "bench", "region": "us-east-1"}
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench",
                 region_name="us-east-1").create_bucket(Bucket="bench")
    store = make_store("s3://bench/data", root, cache_bytes=2**30, s3_options={"endpoint_url": endpoint, **creds})
    keys = []
    for sample in samples:
        data = Path(sample.path).read_bytes()
        keys.append(image_key(hashlib.sha256(data).hexdigest()))
        store.write(keys[-1], data)
    return server, store, keys


def main(data: Path) -> None:
    from app.ml.files import set_resolver

    samples, _ = image_folder(data / "train")
    more, _ = image_folder(data / "val", start_id=len(samples))
    samples += more
    warm_file_cache(samples)
    with tempfile.TemporaryDirectory() as tmp:
        server, store, keys = _bucket_store(samples, Path(tmp))
        set_resolver(store.resolve_ref)
        try:
            refs = [store.ref(k) for k in keys]
            cold = _read_all(refs)
            floors, warms = [], []
            for _ in range(REPEATS):
                floors.append(_read_all([s.path for s in samples]))
                warms.append(_read_all(refs))
        finally:
            set_resolver(None)
            server.stop()
    floor, warm = statistics.median(floors), statistics.median(warms)
    n = len(samples)
    print_table([
        _info(f"floor: local files, {n} images (s)", floor),
        _info("cold: first read through the bucket (s)", cold),
        _info("warm: cache hits (s)", warm),
        _info("cold ratio = floor / cold", floor / cold),
        row("warm ratio = floor / warm", floor / warm, ">= 0.9", floor / warm >= 0.9),
    ], "Reading images through the S3 backend's cache")


def _info(figure: str, value: float) -> dict:
    return {"figure": figure, "value": value, "target": "", "passed": None}


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA)

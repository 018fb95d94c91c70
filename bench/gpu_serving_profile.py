"""Where the time of the serving batch path goes on a many-core GPU machine (diagnostic, not a bench row).

Usage: python bench/gpu_serving_profile.py   (after bench/gpu_check.py's photo generator; CUDA or CPU)
"""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)  # installs the app package shim on a bare machine

import torch  # noqa: E402


def timed(label: str, fn, n: int) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<48} {n / wall:8.0f} img/s   cpu/wall {cpu / wall:5.2f}", flush=True)


def main() -> None:
    from app import serving as srv
    from app.ml.engine import TrainInputs, TrainSetup, train
    from app.ml.inference import Predictor, decode_image
    from app.ml.options import TrainOptions

    print(f"cores {os.cpu_count()}, affinity {len(os.sched_getaffinity(0))}, torch threads "
          f"{torch.get_num_threads()}, decode workers {srv.DECODE_WORKERS}, switch {sys.getswitchinterval()}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device}, cuda available {torch.cuda.is_available()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        samples, classes, blobs = gpu_check.make_photos(tmp / "p", 128)
        train(TrainInputs(samples, classes), TrainOptions(epochs=5), tmp / "m",
              setup=TrainSetup(device=device, feature_dir=tmp / "f", backbone_dir=tmp / "b"))
        predictor = Predictor.load(tmp / "m", backend="torch" if device == "cuda" else "auto", device=device)
        print(f"predictor {predictor.backend} on {predictor.device}", flush=True)
        n = len(blobs)
        uploads = [srv.Upload(f"{i}.jpg", b) for i, b in enumerate(blobs)]
        limits = srv.Limits(40_000_000, 10**10)
        for threads in (1, 8, 16):
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda b: decode_image(b, image_size=224), blobs[:16]))
                timed(f"decode only, {threads} threads", lambda: list(pool.map(
                    lambda b: decode_image(b, image_size=224), blobs)), n)
                timed(f"prepare (decode+crop), {threads} threads", lambda: list(pool.map(predictor.prepare, blobs)), n)
        srv.predict_uploads(predictor, uploads, limits, 256)  # warm: the first forward at a size is slower
        timed("headers (dedupe + open, this thread)", lambda: [srv._open(predictor, u, limits.image_pixels)
                                                                for u in uploads if srv.first_copies([u.data])], n)
        timed("prepare_batch (pool + normalise)", lambda: srv.prepare_batch(predictor, uploads, limits), n)
        timed("predict_uploads (batch + queue + forward)", lambda: srv.predict_uploads(predictor, uploads, limits, 256), n)
        torch.set_num_threads(1)
        timed("predict_uploads, torch.set_num_threads(1)", lambda: srv.predict_uploads(predictor, uploads, limits, 256), n)
        batch = predictor.normalize([predictor.prepare(b) for b in blobs])
        predictor.warm_up(256)  # this thread's cuDNN plans (the queue's thread has its own)
        timed("forward only", lambda: predictor.probabilities(batch, 256), n)


if __name__ == "__main__":
    main()

"""Fast model serving: a per-process LRU cache of loaded predictors, parallel image decoding and
one inference thread that batches concurrent requests.

Each web process loads a model once and keeps it (keyed by run id, artifact folder and the
model card's modification time, so a retrained model is reloaded). On CPU the ONNX graph runs
through onnxruntime; it is checked against the PyTorch model once at load time and the PyTorch
model is used instead if the two disagree. With a GPU the TorchScript model runs there.
"""
from __future__ import annotations

import gc
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from app.ml.artifacts import CARD as CARD_FILE

log = logging.getLogger(__name__)

VERIFY_ATOL = 1e-4  # on softmax probabilities
BF16_ATOL = 2e-2    # bfloat16 keeps ~3 significant digits: enough to rank classes, checked per model
DECODE_WORKERS = max(2, min(8, os.cpu_count() or 2))


@dataclass
class Upload:
    """One uploaded file: its name and bytes."""

    filename: str
    data: bytes


@dataclass
class Prepared:
    """An upload after decoding: its name, and a plain-English error (with its stable code, see
    app/errors.py ERROR_CODES) when it could not be used."""

    filename: str
    error: str | None = None
    code: str | None = None


class ModelCache:
    """A small thread-safe LRU of loaded predictors."""

    def __init__(self, size: int):
        self.size = max(1, int(size))
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()  # loading is rare and heavy: one at a time

    def get(self, key: tuple, loader: Callable[[], object], settle: bool = False) -> object:
        """The cached value for key, loading (and evicting the least recently used) on a miss; with
        settle, the heap is settled after a load (settle_heap)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        with self._load_lock:
            with self._lock:  # another thread may have loaded it while we waited
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
            value = loader()
            with self._lock:
                self._items[key] = value
                while len(self._items) > self.size:
                    evicted, _ = self._items.popitem(last=False)
                    log.info("model cache: evicted %s", evicted)
            if settle:
                settle_heap()
        return value

    def forget(self, run_id: int) -> int:
        """Drop every cached version of a run's model; returns how many were dropped."""
        with self._lock:
            keys = [key for key in self._items if key[0] == run_id]
            for key in keys:
                del self._items[key]
        return len(keys)

    def keys(self) -> list[tuple]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def settle_heap() -> None:
    """After a model load: take the process's long-lived objects out of the garbage collector's walks.

    The first load imports torch and onnxruntime, which leaves ~450,000 long-lived objects; a full
    collection walks every one of them with all request threads stopped (measured in the web server:
    120-370 ms each, against ~13 ms once they are frozen). Frozen objects are still freed when nothing
    refers to them; unfreezing first lets this collection also reclaim the cycles of a model just
    evicted. Loads are rare, and this one collection is small beside a load."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


_cache = ModelCache(4)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def model_cache(size: int | None = None) -> ModelCache:
    """The process-wide cache, resized to `size` (MODEL_CACHE_SIZE) when given."""
    if size is not None:
        _cache.size = max(1, int(size))
    return _cache


def forget_model(run_id: int) -> None:
    """Call when a model is deleted (or its files replaced): the next request reloads it."""
    dropped = _cache.forget(run_id)
    if dropped:
        log.info("model cache: forgot run %s", run_id)


def cache_key(run_id: int, artifact_dir: str | Path) -> tuple:
    """(run id, folder, card mtime): a rewritten model card means a new model."""
    folder = Path(artifact_dir)
    try:
        mtime = (folder / CARD_FILE).stat().st_mtime_ns
    except OSError:
        mtime = None
    return (run_id, str(folder), mtime)


@dataclass(frozen=True)
class Placement:
    """Where and how a served model runs: device (None: GPU when present), ONNX Runtime threads
    (0: all cores), precision on a GPU ('fp32' or 'bf16')."""

    device: str | None = None
    threads: int = 0
    precision: str = "fp32"


def get_predictor(run_id: int, artifact_dir: str | Path, cache_size: int, placement: Placement = Placement(),
                  freeze_heap: bool = False):
    """The loaded predictor for a run, from the cache when possible (freeze_heap: see settle_heap)."""
    key = cache_key(run_id, artifact_dir)
    return model_cache(cache_size).get(
        key, lambda: load_predictor(artifact_dir, placement.device, placement.threads, placement.precision),
        settle=freeze_heap)


def load_predictor(artifact_dir: str | Path, device: str | None = None, threads: int = 0,
                   precision: str = "fp32"):
    """Load a model for serving: GPU when present, else ONNX on CPU when it matches torch, else torch.
    precision (GPU): 'fp32', or 'bf16'/'auto', kept only where it agrees with fp32 (BF16_ATOL)."""
    from app.ml.inference import Predictor

    predictor = Predictor.load(artifact_dir, backend="auto", device=device, threads=threads, precision=precision)
    if _backend_name(predictor) != "onnx":
        return _checked_precision(predictor, artifact_dir)
    reference = Predictor.load(artifact_dir, backend="torch", device="cpu")
    difference = agreement(predictor, reference)
    if difference > VERIFY_ATOL:
        log.warning("ONNX model in %s differs from torch by %.2e; serving with torch instead",
                    artifact_dir, difference)
        return reference
    log.info("serving %s with onnxruntime (max difference to torch %.1e)", artifact_dir, difference)
    return predictor


def _checked_precision(predictor, artifact_dir: str | Path):
    """A bf16 GPU predictor is kept only when its probabilities stay within BF16_ATOL of float32."""
    from app.ml.inference import Predictor

    if getattr(predictor, "precision", "fp32") != "bf16":
        log.info("serving %s with torch on %s", artifact_dir, predictor.device)
        return predictor
    reference = Predictor.load(artifact_dir, backend="torch", device=predictor.device, precision="fp32")
    difference = agreement(predictor, reference)
    if difference > BF16_ATOL:
        log.warning("bf16 model in %s differs from float32 by %.2e; serving in float32", artifact_dir, difference)
        return reference
    log.info("serving %s with torch on %s in bf16 (max difference to float32 %.1e)", artifact_dir,
             predictor.device, difference)
    return predictor


def _backend_name(predictor) -> str:
    return str(getattr(predictor, "backend", "torch")).lower()


def random_images(count: int = 2, size: int = 64, seed: int = 0) -> list:
    """Random RGB PIL images (used to compare two backends without any real data)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size + 7 * i, 3), dtype=np.uint8), "RGB")
            for i in range(count)]


def agreement(a, b, images: Sequence | None = None) -> float:
    """Largest absolute difference between two predictors' probabilities on the same images."""
    images = list(images) if images is not None else random_images()
    return float(np.abs(a.predict_proba(images) - b.predict_proba(images)).max())


def _decode_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=DECODE_WORKERS, thread_name_prefix="decode")
        return _pool


@dataclass(frozen=True)
class Limits:
    """Pixels one image may have (its header says), and pixels one request may make us decode."""

    image_pixels: int
    request_pixels: int


OVER_BUDGET = ("This request holds more image pixels than one request may decode ({limit:,}); "
               "send the remaining images in another request.")


def first_copies(blobs: Sequence[bytes]) -> list[int]:
    """For each blob the index of the first one equal to it. Only blobs of the same length are compared
    (a memcmp): no pass over every byte as hashing would make (11 ms for 32 photos)."""
    by_length: dict[int, list[int]] = {}
    source = []
    for i, blob in enumerate(blobs):
        same_length = by_length.setdefault(len(blob), [])
        source.append(next((j for j in same_length if blobs[j] == blob), i))
        if source[-1] == i:
            same_length.append(i)
    return source


def _open(predictor, upload: Upload, max_pixels: int):
    """The upload's opened image (header read, nothing decoded), or its Prepared error."""
    from app.ml.errors import BadImage

    try:
        return predictor.open(upload.data, max_pixels)
    except BadImage as err:
        return Prepared(upload.filename, error=err.message, code="bad_image")


def _over_budget(opened: dict[int, object], limits: Limits) -> set[int]:
    """The uploads, in order, past the request's pixel budget (the opened images' sizes are what
    decoding them will make: JPEG draft scale included)."""
    refused, left = set(), limits.request_pixels
    for i, img in opened.items():
        if not isinstance(img, Prepared):
            left -= img.size[0] * img.size[1]
            if left < 0:
                refused.add(i)
    return refused


def _prepare_into(predictor, upload: Upload, img, row: np.ndarray) -> Prepared:
    """Decode, crop and normalise one opened upload into its row of the batch."""
    from app.ml.errors import BadImage

    try:
        predictor.normalize(predictor.prepare_opened(img)[None], out=row[None])
    except BadImage as err:
        return Prepared(upload.filename, error=err.message, code="bad_image")
    return Prepared(upload.filename)


def _map(function, items: list) -> list:
    """function over items, on the decode pool when there are several."""
    return list(map(function, items) if len(items) <= 1 else _decode_pool().map(function, items))


def prepare_batch(predictor, uploads: Sequence[Upload], limits: Limits) -> tuple[list[Prepared], np.ndarray]:
    """Decode uploads in parallel (Pillow and numpy release the GIL) straight into one model-ready
    batch. Each distinct file is opened once: its header gives its pixel count, checked against the
    request's budget before anything is decoded; identical files are decoded once. Returns the uploads
    in order and the batch rows of the good ones, in order."""
    size = predictor.image_size
    batch = np.empty((len(uploads), 3, size, size), dtype=np.float32)
    source = first_copies([u.data for u in uploads])
    unique = [i for i in range(len(uploads)) if source[i] == i]
    # Reading headers is Python under the GIL (~40 us an upload): in this thread, not the pool's.
    opened = {i: _open(predictor, uploads[i], limits.image_pixels) for i in unique}
    refused = _over_budget(opened, limits)
    # Largest files first: a phone photo among thumbnails then decodes while the small ones fill the
    # other threads, instead of starting last and leaving them idle while it finishes.
    todo = sorted((i for i in unique if i not in refused and not isinstance(opened[i], Prepared)),
                  key=lambda i: -len(uploads[i].data))
    done = {i: img for i, img in opened.items() if isinstance(img, Prepared)}
    done.update(zip(todo, _map(lambda i: _prepare_into(predictor, uploads[i], opened[i], batch[i]), todo)))
    over = Prepared("", error=OVER_BUDGET.format(limit=limits.request_pixels), code="over_pixel_budget")
    prepared = []
    for i, upload in enumerate(uploads):
        original = over if source[i] in refused else done[source[i]]
        if source[i] != i and original.error is None:
            batch[i] = batch[source[i]]
        prepared.append(Prepared(upload.filename, error=original.error, code=original.code))
    good = [i for i, item in enumerate(prepared) if item.error is None]
    return prepared, (batch if len(good) == len(uploads) else batch[good])


@dataclass
class Timings:
    """Where one request's time went, in seconds: reading and parsing its body, decoding its uploads,
    waiting for the inference thread, and the forward passes its images were in (shared with the
    requests batched alongside; batch is the largest such pass, in images). POST /predict sends them as
    a Server-Timing header."""

    body: float = 0.0
    decode: float = 0.0
    queue: float = 0.0
    forward: float = 0.0
    batch: int = 0

    def header(self) -> str:
        """The Server-Timing header value (durations in milliseconds, as the header wants)."""
        return (f"body;dur={self.body * 1000:.1f}, decode;dur={self.decode * 1000:.1f}, "
                f"queue;dur={self.queue * 1000:.1f}, "
                f"forward;dur={self.forward * 1000:.1f};desc=\"batch of {self.batch}\"")


@dataclass
class _Job:
    predictor: object
    batch: np.ndarray
    future: Future
    forward: float = 0.0  # seconds of the forward pass this job ran in (set before the future is)
    group_images: int = 0


class InferenceQueue:
    """The one thread of this process that runs forward passes.

    Requests hand it their normalised batch and wait. Jobs for the same model that queue up while
    a batch runs go together into the next one (up to max_batch images), so concurrent single-image
    requests share one forward pass. On a CPU this also keeps requests from fighting over the cores
    (each forward pass already uses all of them); on a GPU a batch of n costs about one image.
    """

    def __init__(self, max_batch: int = 32):
        self.max_batch = max(1, int(max_batch))
        self._warmed: weakref.WeakSet = weakref.WeakSet()  # predictors warmed up in this queue's thread
        self._pending: deque[_Job] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def run(self, predictor, batch: np.ndarray, timings: Timings | None = None) -> np.ndarray:
        """Probabilities for a normalised batch, computed max_batch images at a time; with timings,
        adds how long it waited for the thread and how long its forward passes took."""
        if len(batch) == 0:  # every upload was bad: nothing to queue
            return predictor.probabilities(batch)
        started = time.perf_counter()
        jobs = [self._submit(predictor, batch[i:i + self.max_batch]) for i in range(0, len(batch), self.max_batch)]
        probs = np.concatenate([job.future.result() for job in jobs])
        if timings is not None:
            forward = sum(job.forward for job in jobs)
            timings.forward += forward
            timings.queue += max(0.0, time.perf_counter() - started - forward)
            timings.batch = max([timings.batch] + [job.group_images for job in jobs])
        return probs

    def _submit(self, predictor, batch: np.ndarray) -> _Job:
        job = _Job(predictor, batch, Future())
        with self._ready:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="inference", daemon=True)
                self._thread.start()
            self._pending.append(job)
            self._ready.notify()
        return job

    def _next_group(self) -> list[_Job]:
        """The oldest job plus every queued job for the same model that still fits the batch."""
        with self._ready:
            while not self._pending:
                self._ready.wait()
            first = self._pending.popleft()
            group, size = [first], len(first.batch)
            for job in list(self._pending):
                if job.predictor is first.predictor and size + len(job.batch) <= self.max_batch:
                    self._pending.remove(job)
                    group.append(job)
                    size += len(job.batch)
            return group

    def _warm_up(self, predictor) -> None:
        """A predictor's first job here first runs its warm-up, in this thread: cuDNN keeps the plans it
        makes for each input shape per thread, so a warm-up anywhere else would not count."""
        if predictor in self._warmed or not hasattr(predictor, "warm_up"):
            return
        seconds = predictor.warm_up(self.max_batch)
        self._warmed.add(predictor)
        if seconds:
            log.info("warmed up a model on %s for batches up to %d in %.1f s", predictor.device,
                     self.max_batch, seconds)

    def _work(self) -> None:
        while True:
            group = self._next_group()
            started = time.perf_counter()
            try:
                self._warm_up(group[0].predictor)
                batch = group[0].batch if len(group) == 1 else np.concatenate([job.batch for job in group])
                probs = group[0].predictor.probabilities(batch, self.max_batch)
            except BaseException as err:  # handed to the waiting requests, the thread lives on
                for job in group:
                    job.future.set_exception(err)
                continue
            elapsed, start = time.perf_counter() - started, 0
            for job in group:
                job.forward, job.group_images = elapsed, len(batch)
                job.future.set_result(probs[start:start + len(job.batch)])
                start += len(job.batch)


_queues: dict[tuple[int, int], InferenceQueue] = {}


def inference_queue(max_batch: int) -> InferenceQueue:
    """This process's queue for a batch size (a forked process gets its own)."""
    key = (os.getpid(), max(1, int(max_batch)))
    with _pool_lock:
        if key not in _queues:
            _queues[key] = InferenceQueue(max_batch)
        return _queues[key]


def predict_uploads(predictor, uploads: Sequence[Upload], limits: Limits, max_batch: int,
                    timings: Timings | None = None) -> tuple[list[Prepared], np.ndarray]:
    """Decode every upload, then run the good ones as one batch (chunked by max_batch); with
    timings, records where the time went.

    Returns (prepared uploads in order, probabilities [n_good, C] in the order of the good ones).
    """
    started = time.perf_counter()
    prepared, batch = prepare_batch(predictor, uploads, limits)
    if timings is not None:
        timings.decode += time.perf_counter() - started
    return prepared, inference_queue(max_batch).run(predictor, batch, timings)

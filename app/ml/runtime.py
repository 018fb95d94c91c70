"""Device, seeding and batch-loading helpers shared by the engine and quick mode."""
from __future__ import annotations

import contextlib
import random
import threading
import queue
from typing import Callable, Iterator, Sequence, TypeVar

import numpy as np
import torch

T = TypeVar("T")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Explicit device, else CUDA when present, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def one_cpu_thread(device: torch.device | str = "cpu"):
    """Run small CPU work (a head's steps, a logistic regression) on one torch thread. Such steps are
    a millisecond of small matrix work: one thread does them about as fast as two, and unlike two it
    does not slow down 5-20x when other processes (workers, decoding threads) share the cores."""
    if torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def cudnn_autotune(enabled: bool):
    """cuDNN's autotuning for the block, then the process's setting back: it times every convolution
    algorithm for each new input shape (seconds each), which pays off over a long training run and
    costs seconds per batch size when the same process later serves or extracts features."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def batch_shapes(max_batch: int) -> list[int]:
    """The batch sizes GPU forward passes run at, for chunks of at most max_batch images: 16, 64 and
    max_batch rounded up to a power of two. cuDNN prepares its plans per input shape and per thread
    (2-7 s each for EfficientNet-Lite0, measured on an H200), so served batches of every size from 1
    up would each pay that; padding costs little on a GPU (a batch of 256 runs in ~36 ms there)."""
    top = 1 << max(0, int(max_batch) - 1).bit_length()
    return sorted({min(16, top), min(64, top), top})


def padded_size(n: int, max_batch: int) -> int:
    """The batch size a GPU forward pass of n images (n <= max_batch) runs at."""
    return next((size for size in batch_shapes(max_batch) if size >= n), n)


def padded_rows(batch, size: int):
    """A batch (numpy array or tensor) with zero rows added up to `size` rows (itself when it has them)."""
    n = len(batch)
    if n >= size:
        return batch
    if isinstance(batch, torch.Tensor):
        return torch.cat([batch, batch.new_zeros((size - n, *batch.shape[1:]))])
    return np.concatenate([batch, np.zeros((size - n, *batch.shape[1:]), batch.dtype)])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where supported, else fp16, on CUDA; None (full precision) on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def memory_format(device: torch.device) -> torch.memory_format:
    # channels_last is also clearly faster on CPU for depthwise-conv networks
    return torch.channels_last


def to_device_images(batch_uint8: torch.Tensor, device: torch.device, mean, std) -> torch.Tensor:
    """uint8 [N,3,H,W] -> normalised float on device, channels_last."""
    x = batch_uint8.to(device, non_blocking=True)
    mean_t = torch.tensor(mean, device=device, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    std_t = torch.tensor(std, device=device, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    x = (x.float() - mean_t) / std_t
    return x.contiguous(memory_format=torch.channels_last)


class Prefetcher:
    """Build batch k+1 in a background thread while batch k is used (PIL/torch release the GIL).

    Items are produced strictly in order by a single thread, so any RNG used by `load`
    is consumed in a deterministic sequence.
    """

    _DONE = object()

    def __init__(self, load: Callable[[T], torch.Tensor], items: Sequence[T], pin: bool = False, depth: int = 2):
        self._load, self._items, self._pin = load, list(items), pin
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batch-prefetch", daemon=True)

    def _run(self) -> None:
        try:
            for item in self._items:
                if self._stop.is_set():
                    return
                batch = self._load(item)
                if self._pin:
                    batch = _pin(batch)
                self._queue.put(batch)
            self._queue.put(self._DONE)
        except BaseException as exc:  # surfaced in the consumer thread
            self._queue.put(exc)

    def __enter__(self) -> Iterator[torch.Tensor]:
        self._thread.start()
        return self._iterate()

    def _iterate(self) -> Iterator[torch.Tensor]:
        while True:
            got = self._queue.get()
            if got is self._DONE:
                return
            if isinstance(got, BaseException):
                raise got
            yield got

    def __exit__(self, *exc) -> None:
        self._stop.set()
        while self._thread.is_alive():  # drain so a blocked put() can finish
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()


def _pin(batch):
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    return type(batch)(_pin(b) for b in batch)


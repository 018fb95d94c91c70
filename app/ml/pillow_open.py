"""Opening images with Pillow from several threads at once. Torch-free (the web process's uploads use it).

Pillow warns (DecompressionBombWarning) when a header announces more than Image.MAX_IMAGE_PIXELS; every
caller here checks the pixel count against its own, lower limit instead, so the warning is silenced
while the header is read. The warnings filters are process-wide and warnings.catch_warnings() is not
thread-safe (two threads restoring the filters out of order leave one thread's filter installed for
good), so one thread at a time changes them; opening reads only the header (~70 µs)."""
from __future__ import annotations

import threading
import warnings
from typing import IO, Sequence

from PIL import Image

_FILTERS_LOCK = threading.Lock()


def open_header(fp: IO[bytes] | str, formats: Sequence[str] | None = None) -> Image.Image:
    """Image.open without the decompression-bomb warning; raises what Image.open raises
    (DecompressionBombError past twice the limit, UnidentifiedImageError, OSError...)."""
    with _FILTERS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(fp, formats=formats)

"""Reference preprocessing of an Image Classifier Studio model: the exact input its POST /predict gives
the network, in Pillow and numpy alone (the studio ships this file beside model.onnx, filled in).

    python preprocess.py model.onnx photo.jpg [more.jpg ...]   # needs onnxruntime; prints JSON

Or call preprocess(path) -> float32 array [1, 3, SIZE, SIZE] and feed it to model.onnx ("input"); the
output "logits" gives probabilities through a softmax. The steps, in order:

1. Open the file and take its first frame.
2. A JPEG is decoded at a reduced scale when it is large: libjpeg's DCT scaling by 1/2, 1/4 or 1/8,
   the strongest that keeps both sides at least DECODE_SIDE pixels (Pillow's Image.draft("RGB",
   (DECODE_SIDE, DECODE_SIDE))). The studio trains, validates, tests and serves from these pixels.
3. Turn the image as its EXIF orientation tag says (PIL.ImageOps.exif_transpose).
4. Convert to RGB.
5. Resize so the short side is RESIZE pixels (bilinear, antialiased) and cut the centre SIZE x SIZE
   square; done as one bilinear resize of just that square's box (the same pixels, less work).
6. To float32: x / 255, then (x - MEAN) / STD per channel; layout NCHW.
"""
from __future__ import annotations

import json
import sys

import numpy as np
from PIL import Image, ImageOps

# Filled in for each model by the studio's export (these values are an example).
CONFIG = {"size": 224, "resize": 256, "decode_side": 258, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "classes": []}  # noqa: E501


def load_rgb(path: str) -> Image.Image:
    """Steps 1-4: the decoded, upright RGB image."""
    with Image.open(path) as img:
        img.seek(0)
        if img.format == "JPEG":
            side = CONFIG["decode_side"]
            img.draft("RGB", (side, side))
        img.load()
        return ImageOps.exif_transpose(img).convert("RGB")


def centre_crop(img: Image.Image) -> Image.Image:
    """Step 5: short side to RESIZE, centre SIZE x SIZE, as one resize of the crop's box."""
    size, resize = CONFIG["size"], CONFIG["resize"]
    width, height = img.size
    if height <= width:
        out_h, out_w = resize, int(resize * width / height)
    else:
        out_h, out_w = int(resize * height / width), resize
    top, left = int(round((out_h - size) / 2.0)), int(round((out_w - size) / 2.0))
    sx, sy = width / out_w, height / out_h
    box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
    return img.resize((size, size), Image.BILINEAR, box=box)


def to_input(img: Image.Image) -> np.ndarray:
    """Step 6: float32 [1, 3, SIZE, SIZE], normalised."""
    x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0)
    mean = np.asarray(CONFIG["mean"], dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(CONFIG["std"], dtype=np.float32).reshape(3, 1, 1)
    return ((x - mean) / std)[None]


def preprocess(path: str) -> np.ndarray:
    """An image file -> the model's input, exactly as the studio's /predict makes it."""
    return to_input(centre_crop(load_rgb(path)))


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1])
        return 2
    import onnxruntime  # only the command line needs it

    session = onnxruntime.InferenceSession(argv[0], providers=["CPUExecutionProvider"])
    for path in argv[1:]:
        probs = softmax(session.run(None, {"input": preprocess(path)})[0])[0]
        best = int(probs.argmax())
        label = CONFIG["classes"][best] if best < len(CONFIG["classes"]) else best
        print(json.dumps({"file": path, "category": label, "confidence": float(probs[best]),
                          "probabilities": [float(p) for p in probs]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

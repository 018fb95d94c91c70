"""Reference preprocessing of an Image Classifier Studio model: the exact input its POST /predict gives
the network, in Pillow and numpy alone (the studio ships this file beside model.onnx, filled in).

    python preprocess.py model.onnx photo.jpg [more.jpg ...] [--threshold 0.8]   # needs onnxruntime

It prints one JSON line per image and answers as /predict does: below the model's confidence threshold
the category is null ("unknown": true). The threshold is read from the model card beside the model
(model_card.json, or NAME.model_card.json beside NAME.onnx); --threshold overrides it (0: always answer).

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

import argparse
import json
import os
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


def answer(probs: np.ndarray, threshold: float | None) -> dict:
    """/predict's answer from one image's probabilities: the most likely class (the first of equals);
    category None and unknown when its probability is below the threshold."""
    best = int(probs.argmax())
    confidence = float(probs[best])
    unknown = threshold is not None and confidence < threshold
    label = CONFIG["classes"][best] if best < len(CONFIG["classes"]) else best
    return {"category": None if unknown else label, "category_index": None if unknown else best,
            "confidence": confidence, "unknown": unknown}


def card_threshold(model_path: str) -> float | None:
    """The "threshold" of the model card beside the model file (NAME.model_card.json beside NAME.onnx,
    as the single downloads are named, else model_card.json), or None without one."""
    folder = os.path.dirname(os.path.abspath(model_path))
    stem = os.path.splitext(os.path.basename(model_path))[0]
    for name in (stem + ".model_card.json", "model_card.json"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                return json.load(fh).get("threshold")
    return None


def parse_threshold(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a number from 0 to 1")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="preprocess.py", description=__doc__.split("\n\n")[2])
    parser.add_argument("model", help="the model's .onnx file")
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--threshold", type=parse_threshold, default=None,
                        help="0 to 1 (0.8: unknown below 80%%); default: the model card's threshold")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    import onnxruntime  # only the command line needs it

    threshold = card_threshold(args.model) if args.threshold is None else args.threshold
    session = onnxruntime.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    for path in args.images:
        probs = softmax(session.run(None, {"input": preprocess(path)})[0])[0]
        print(json.dumps({"file": path, **answer(probs, threshold), "probabilities": [float(p) for p in probs]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

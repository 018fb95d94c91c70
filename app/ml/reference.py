"""The preprocess.py shipped with every model: app/ml/reference_preprocess.py with its CONFIG line filled
in from the model card. Torch-free, so the web process can write it for models exported before it
existed (their preprocessing is the same: serving has always decoded this way)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

DECODE_RATIO = 1.15  # JPEGs decode at a reduced scale keeping the short side >= size * 1.15 (data.py)
EXAMPLE_NOTE = "# Filled in for each model by the studio's export (these values are an example)."
THRESHOLD_RULE = ("Below this confidence threshold (top probability < threshold) POST /predict and preprocess.py "
                  "answer no category (\"unknown\": true); null: they always answer. It is set on the model's "
                  "page after training: the value is the one the model had when this card was downloaded.")


def decoded_short_side(image_size: int) -> int:
    """The short side a JPEG is decoded to at least (JPEG draft decoding, serving and training alike)."""
    return int(math.ceil(image_size * DECODE_RATIO))


def config_from_card(card: Mapping) -> dict:
    """preprocess.py's CONFIG from a model card (older cards: the decode side is computed)."""
    spec = card["input"]
    size = int(spec["size"])
    return {"size": size, "resize": int(spec["resize_size"]),
            "decode_side": int(spec.get("decode_side") or decoded_short_side(size)),
            "mean": list(spec["mean"]), "std": list(spec["std"]), "classes": list(card.get("classes") or [])}


def reference_source(config: Mapping, note: str) -> str:
    """reference_preprocess.py's text with CONFIG = config and `note` (one comment line) above it."""
    source = (Path(__file__).with_name("reference_preprocess.py")).read_text()
    lines = [f"CONFIG = {json.dumps(dict(config))}  # noqa: E501" if line.startswith("CONFIG = ") else line
             for line in source.splitlines()]
    return "\n".join(lines).replace(EXAMPLE_NOTE, note) + "\n"


def source_from_card(card: Mapping) -> str:
    """preprocess.py's text for the model a card describes."""
    note = f"# This model: {card.get('architecture_label', card.get('architecture', ''))}, {card['input']['size']} px."
    return reference_source(config_from_card(card), note)


def with_threshold(card: Mapping, threshold: float | None) -> dict:
    """The card with the model's current confidence threshold (set after training, so the card written
    at export has none)."""
    return {**card, "threshold": threshold, "threshold_rule": THRESHOLD_RULE}


def write_from_card(card: Mapping, path: Path) -> None:
    """Write preprocess.py for the model a card describes."""
    path.write_text(source_from_card(card))

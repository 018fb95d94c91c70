"""The files a trained model is written as (one place for their names; no torch needed to read it)."""
from __future__ import annotations

STATE_DICT = "model.pt"
TORCHSCRIPT = "model.torchscript.pt"
ONNX = "model.onnx"
CARD = "model_card.json"
CHECKPOINT = "checkpoint.pt"
PREPROCESS = "preprocess.py"   # the reference preprocessing (Pillow + numpy), filled in for the model
README = "README.txt"           # in the "Download all" zip only: how to run the model offline

# What export_model writes, by kind.
FILES = {"state_dict": STATE_DICT, "torchscript": TORCHSCRIPT, "onnx": ONNX, "card": CARD,
         "preprocess": PREPROCESS}

# "Download all": one zip of FILES under these names, and README. Not the checkpoint: its optimizer
# state makes it two to three times the model, and only continuing training needs it.
ZIP_KIND = "zip"

# What users can download one by one, by kind: (file, download-name suffix, mimetype).
DOWNLOADS = {
    "weights": (STATE_DICT, ".pt", "application/octet-stream"),
    "torchscript": (TORCHSCRIPT, ".torchscript.pt", "application/octet-stream"),
    "onnx": (ONNX, ".onnx", "application/octet-stream"),
    "card": (CARD, ".model_card.json", "application/json"),
    "preprocess": (PREPROCESS, ".preprocess.py", "text/x-python"),
    # model, optimizer, scheduler, epoch and options: to continue training elsewhere
    "checkpoint": (CHECKPOINT, ".checkpoint.pt", "application/octet-stream"),
}

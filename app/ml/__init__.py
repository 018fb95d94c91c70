"""ML library of the studio: tensors and files in, tensors and files out.

Imports only torch, torchvision, numpy, pillow, onnx/onnxruntime - never the web app. The names below
are loaded on first use (PEP 562), so importing a light submodule such as app.ml.artifacts does not
pull torch into the web process.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "architectures": ("ClassifierModel", "build_model"),
    "networks": ("DEFAULT_ARCHITECTURE", "ArchInfo", "architecture_info", "get_architecture", "list_architectures",
                 "set_weights_dir", "weights_dir", "weights_path"),
    "data": ("Sample", "stratified_split", "validate_split"),
    "embeddings": ("EmbeddingStats", "FeatureSetup", "ImageFiles", "file_sha256"),
    "engine": ("TrainResult", "train"),
    "errors": ("ArchitectureUnavailable", "BadImage", "ExportMismatch", "InvalidOptions", "MLError",
               "NotTrainable", "TrainingCancelled", "UnknownArchitecture", "WeightsError"),
    "export": ("export_model",),
    "inference": ("DEFAULT_MAX_PIXELS", "Predictor", "decode_image", "top_k"),
    "metrics": ("classification_report",),
    "options": ("MODES", "TrainOptions", "mode_defaults"),
    "trainable": ("check_trainable", "min_images_per_class", "training_gaps"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

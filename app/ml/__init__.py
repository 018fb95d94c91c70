"""ML library of the studio: tensors and files in, tensors and files out.

Imports only torch, torchvision, numpy, pillow, onnx/onnxruntime - never the web app.
"""
from .architectures import (DEFAULT_ARCHITECTURE, ArchInfo, ClassifierModel, architecture_info,
                            build_model, get_architecture, list_architectures, torchvision_weight_path)
from .data import Sample, check_trainable, stratified_split, validate_split
from .embeddings import EmbeddingCache, EmbeddingStats, file_sha256
from .engine import TrainResult, train
from .errors import (ArchitectureUnavailable, BadImage, ExportMismatch, InvalidOptions, MLError,
                     NotTrainable, TrainingCancelled, UnknownArchitecture)
from .export import export_model
from .inference import DEFAULT_MAX_PIXELS, Predictor, decode_image, top_k
from .metrics import classification_report
from .options import MODES, TrainOptions, mode_defaults

__all__ = [
    "DEFAULT_ARCHITECTURE", "ArchInfo", "ClassifierModel", "architecture_info", "build_model",
    "get_architecture", "list_architectures", "torchvision_weight_path", "Sample", "check_trainable",
    "stratified_split", "validate_split", "EmbeddingCache", "EmbeddingStats", "file_sha256", "TrainResult",
    "train", "ArchitectureUnavailable", "BadImage", "ExportMismatch", "InvalidOptions", "MLError",
    "NotTrainable", "TrainingCancelled", "UnknownArchitecture", "export_model", "DEFAULT_MAX_PIXELS",
    "Predictor", "decode_image", "top_k", "classification_report", "MODES", "TrainOptions", "mode_defaults",
]

"""The domain classifier: the Runnable, its options, its backends and its calibration.

``DomainClassifier`` (cache, coalescing, the Runnable interface) runs on a ``Backend``:
``TorchBackend`` or ``OnnxBackend``. Training's calibration, evaluation and latency
measurement score through the same backends (``backend_logits``, ``probabilities``).
"""

from langchain_domain_router.classifier._backends import (
    Backend,
    OnnxBackend,
    TorchBackend,
    backend_features,
    backend_logits,
)
from langchain_domain_router.classifier._chars import CHAR_IDS, char_cap
from langchain_domain_router.classifier._fit_domains import FitReport, fit_domains
from langchain_domain_router.classifier._fit_head import Head, fit_linear_head
from langchain_domain_router.classifier._onnx import onnx_file, read_export
from langchain_domain_router.classifier._onnx_export import export_model, export_onnx
from langchain_domain_router.classifier._predictions import (
    default_model_path,
    resolve_model_path,
)
from langchain_domain_router.classifier._runnable import DomainClassifier
from langchain_domain_router.classifier._runtime import available_cpus, default_threads
from langchain_domain_router.classifier._scoring import Scoring, probabilities, top_log_odds
from langchain_domain_router.classifier._settings import (
    CALIBRATION_KEY,
    Calibration,
    ClassifierOptions,
    ClassifierSettings,
)

__all__ = [
    "CALIBRATION_KEY",
    "CHAR_IDS",
    "Backend",
    "Calibration",
    "ClassifierOptions",
    "ClassifierSettings",
    "DomainClassifier",
    "FitReport",
    "Head",
    "OnnxBackend",
    "Scoring",
    "TorchBackend",
    "backend_features",
    "available_cpus",
    "backend_logits",
    "char_cap",
    "default_model_path",
    "default_threads",
    "export_model",
    "export_onnx",
    "fit_domains",
    "fit_linear_head",
    "onnx_file",
    "probabilities",
    "read_export",
    "resolve_model_path",
    "top_log_odds",
]

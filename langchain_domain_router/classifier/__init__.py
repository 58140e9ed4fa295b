"""The domain classifier: everything that turns a question's text into a prediction.

``DomainClassifier`` (the Runnable interface, input reading, coalescing) is a
``ClassifierModel`` (loading, scoring, cache) that runs on a ``Backend``: ``TorchBackend``,
``OnnxBackend``, or an ``EnsembleBackend`` of several (``_ensemble``, loaded by
``_loading``). Beside them: the options and calibration (``_settings``), the
tokenisation both backends share (``_onnx``, ``_chars``), the ONNX export
(``_onnx_export``), the project's model class (``modeling``) and the fitting of heads and
own domains (``_fit_head``, ``_fit_domains``). Training's calibration, evaluation and
latency measurement score through the same backends (``backend_logits``,
``probabilities``).
"""

from langchain_domain_router.classifier._backends import (
    Backend,
    OnnxBackend,
    TorchBackend,
    backend_features,
    backend_logits,
)
from langchain_domain_router.classifier._chars import CHAR_IDS, char_cap
from langchain_domain_router.classifier._ensemble import (
    EnsembleBackend,
    EnsembleMember,
    EnsembleSpec,
    write_ensemble,
)
from langchain_domain_router.classifier._fit_domains import FitReport, fit_domains
from langchain_domain_router.classifier._fit_head import Head, fit_linear_head
from langchain_domain_router.classifier._onnx import onnx_file, read_export
from langchain_domain_router.classifier._onnx_export import export_model, export_onnx
from langchain_domain_router.classifier._packed import load_model, pack_weights
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
    "EnsembleBackend",
    "EnsembleMember",
    "EnsembleSpec",
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
    "load_model",
    "onnx_file",
    "pack_weights",
    "probabilities",
    "read_export",
    "resolve_model_path",
    "top_log_odds",
    "write_ensemble",
]

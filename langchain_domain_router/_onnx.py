"""The ONNX Runtime backend and the one tokenisation path both backends share.

``export_onnx`` (torch and ``onnx`` needed once, at export) writes ``onnx/model.onnx``
(and ``model.int8.onnx``), the exact tokenizer the torch path uses and ``export.json``
into the model directory. At run time only ``onnxruntime``, ``tokenizers`` and
``numpy`` are imported: less memory, a faster start, and less per-call overhead than
eager torch for a model this small. Nothing here assumes a model family: input names
come from the graph and the tokenizer, the logits are the graph's first output.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_domain_router._chars import CHAR_IDS, char_cap, char_ids

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

ONNX_DIR = "onnx"
"""Where ``export_onnx`` writes, inside the model directory."""
EXPORT_META = "export.json"
"""The export's record: pad id, input names, the default graph and the int8 check."""
INT8_TOLERANCE_POINTS = 0.5
"""int8 becomes a model's default graph only when it loses at most this much accuracy."""

Precision = Literal["float32", "int8"]
"""Which exported graph runs: full precision or dynamically int8-quantised."""


def onnx_file(model_dir: str | Path, precision: Precision) -> Path:
    """The ONNX file of ``precision`` in ``model_dir``."""
    name = "model.onnx" if precision == "float32" else f"model.{precision}.onnx"
    return Path(model_dir) / ONNX_DIR / name


def read_export(model_dir: str | Path) -> dict[str, Any] | None:
    """The export record of ``model_dir``, or ``None`` when it has not been exported."""
    path = Path(model_dir) / ONNX_DIR / EXPORT_META
    if not path.is_file():
        return None
    return dict(json.loads(path.read_text(encoding="utf-8")))


def default_precision(model_dir: str | Path) -> Precision:
    """The graph ``export_onnx`` chose for ``model_dir`` (int8 only when it was checked)."""
    meta = read_export(model_dir) or {}
    return "int8" if meta.get("default") == "int8" else "float32"


def onnx_ready(model_dir: str | Path, precision: Precision | None) -> bool:
    """Whether ``backend="onnx"`` can run ``model_dir`` here (exported, onnxruntime found)."""
    if read_export(model_dir) is None:
        return False
    chosen = precision or default_precision(model_dir)
    return onnx_file(model_dir, chosen).is_file() and (
        importlib.util.find_spec("onnxruntime") is not None
    )


@dataclass
class LightConfig:
    """The parts of a model's ``config.json`` the classifier reads, without transformers."""

    id2label: dict[int, str]
    num_labels: int
    problem_type: str | None = None
    domain_router: dict[str, Any] = field(default_factory=dict)
    max_position_embeddings: int | None = None
    ngram_input: str | None = None
    ngram_max_chars: int | None = None

    @classmethod
    def read(cls, model_dir: str | Path) -> LightConfig:
        """Read ``config.json`` from ``model_dir``."""
        raw = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
        id2label = {int(i): str(label) for i, label in (raw.get("id2label") or {}).items()}
        return cls(
            id2label=id2label,
            num_labels=int(raw.get("num_labels") or len(id2label)),
            problem_type=raw.get("problem_type"),
            domain_router=dict(raw.get("domain_router") or {}),
            max_position_embeddings=raw.get("max_position_embeddings"),
            ngram_input=raw.get("ngram_input"),
            ngram_max_chars=raw.get("ngram_max_chars"),
        )


def token_cap(max_length: int | None, config: Any) -> int:
    """Tokens kept per question.

    ``max_length``, else the model's calibrated cap (or 128), never more than the model
    has position embeddings for.
    """
    settings = dict(getattr(config, "domain_router", None) or {})
    cap = max_length or int(settings.get("max_length", 128))
    positions = getattr(config, "max_position_embeddings", None)
    return min(cap, int(positions)) if isinstance(positions, int) and positions > 0 else cap


class BatchTokenizer:
    """A ``tokenizers.Tokenizer`` that turns a list of texts into one padded int64 batch.

    Both backends tokenise through this: one Rust ``encode_batch_fast`` call (no
    offsets, padding and truncation done in Rust), then one array per input the model
    takes (with ``char_cap``, also the ``char_ids`` of a character n-gram branch). It is
    safe to share between threads: its settings are fixed at creation.

    Example:
        ```python
        tokenizer = BatchTokenizer(Tokenizer.from_file("tokenizer.json"), 0, ["input_ids"], 64)
        tokenizer.encode(["민법상 채권자대위권의 요건은?"])["input_ids"].shape  # (1, n)
        ```
    """

    def __init__(
        self,
        tokenizer: Any,
        pad_id: int,
        input_names: Sequence[str],
        max_length: int,
        char_cap: int | None = None,
    ) -> None:
        self.backend_tokenizer = tokenizer
        self.char_cap = char_cap
        self.backend_tokenizer.enable_padding(pad_id=pad_id)
        self.backend_tokenizer.enable_truncation(max_length)
        self.input_names = tuple(input_names)
        self.max_length = max_length
        encode = getattr(tokenizer, "encode_batch_fast", None)  # tokenizers >= 0.20.1
        self._encode_batch = encode or tokenizer.encode_batch

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Tokenize ``texts`` into one batch padded to its longest text."""
        import numpy as np

        encodings = self._encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64).reshape(len(texts), -1)
        batch = {"input_ids": ids}
        if "attention_mask" in self.input_names:
            batch["attention_mask"] = np.array(
                [e.attention_mask for e in encodings], dtype=np.int64
            ).reshape(ids.shape)
        if "token_type_ids" in self.input_names:
            # One sequence per input: every token is of type 0.
            batch["token_type_ids"] = np.zeros_like(ids)
        if self.char_cap is not None:
            batch[CHAR_IDS] = char_ids(texts, self.char_cap)
        return batch


def warm_up(run: Any, tokenizer: BatchTokenizer) -> None:
    """Run a few forward passes of the shapes traffic will bring, so no caller pays for them.

    The first calls of a session allocate its memory arena and pick kernels per shape;
    doing that at load keeps it out of the first requests' latency (and the p99).
    """
    short, long = "warm up", "warm up " * tokenizer.max_length
    for texts in ([short], [long], [short, long] * 4):
        run(tokenizer.encode(texts))


class OnnxModel:
    """An ONNX Runtime session that maps a tokenized batch to logits."""

    def __init__(self, path: Path, config: LightConfig, num_threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        # One request's graph runs op after op; a second pool would only compete for cores.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if num_threads > 1:
            # Idle workers that spin take cores from the expert calls, the event loop and
            # any neighbour, and make the tail long when a core is busy elsewhere.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [node.name for node in self.session.get_inputs()]
        outputs = [node.name for node in self.session.get_outputs()]
        self.output_name = "logits" if "logits" in outputs else outputs[0]
        self.config = config
        self.path = path

    def __call__(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """Return the logits of a tokenized batch."""
        feeds = {name: encoded[name] for name in self.input_names}
        return self.session.run([self.output_name], feeds)[0]


def export_hint(model_dir: str | Path, precision: Precision = "float32") -> str:
    """The command that exports ``model_dir`` (for error messages)."""
    flag = " --int8" if precision == "int8" else ""
    return f"`domain-router export-onnx --model {model_dir}{flag}`"


def load_onnx(
    model_dir: str, precision: Precision | None, num_threads: int, max_length: int | None
) -> tuple[OnnxModel, BatchTokenizer]:
    """Load an exported model and its tokenizer.

    Args:
        model_dir: The model directory.
        precision: The graph to run; ``None`` runs the one the export chose.
        num_threads: ONNX Runtime intra-op threads.
        max_length: Token cap; ``None`` takes the model's own (or 128).

    Raises:
        ValueError: If the model has not been exported, or onnxruntime is missing.
    """
    meta = read_export(model_dir)
    chosen = precision or default_precision(model_dir)
    path = onnx_file(model_dir, chosen)
    if meta is None or not path.is_file():
        msg = f"{model_dir!r} has no {ONNX_DIR}/{path.name}: export it once with " + export_hint(
            model_dir, chosen
        )
        raise ValueError(msg)
    if importlib.util.find_spec("onnxruntime") is None:
        msg = "backend='onnx' needs onnxruntime: pip install onnxruntime"
        raise ValueError(msg)
    from tokenizers import Tokenizer

    config = LightConfig.read(model_dir)
    model = OnnxModel(path, config, num_threads)
    tokenizer = BatchTokenizer(
        Tokenizer.from_file(str(path.parent / "tokenizer.json")),
        pad_id=int(meta["pad_id"]),
        input_names=model.input_names,
        max_length=token_cap(max_length, config),
        char_cap=char_cap(config),
    )
    return model, tokenizer


# -- export ---------------------------------------------------------------------------

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

    import langchain_domain_router.modeling  # noqa: F401  (registers the project's model type)

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
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    meta: dict[str, Any] = {"pad_id": pad_id, "inputs": names, "default": "float32"}
    (out / EXPORT_META).write_text(json.dumps(meta, indent=1))
    float_model, float_tokenizer = load_onnx(str(model_dir), "float32", 1, 64)
    with torch.inference_mode():
        expected = model(**encoded).logits.numpy()
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


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantizer_logger = logging.getLogger()
    level = quantizer_logger.level
    quantizer_logger.setLevel(logging.ERROR)  # one line per tensor otherwise
    try:
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
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
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        predicted = np.empty(len(texts), dtype=np.int64)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            logits = model(tokenizer.encode([texts[i][:2048] for i in chunk]))
            predicted[chunk] = logits.argmax(-1)
        names = model.config.id2label
        predictions[precision] = [names[int(i)] for i in predicted]
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
    from langchain_domain_router.training._data import DataError, load_kmmlu

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

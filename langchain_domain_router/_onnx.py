"""The ONNX Runtime backend: run an exported classifier without importing torch.

``export_onnx`` (torch and ``onnx`` needed once, at export) writes ``onnx/model.onnx``
and the exact tokenizer the torch path uses into the model directory. At run time only
``onnxruntime``, ``tokenizers`` and ``numpy`` are imported: less memory, a faster
start, and less per-call overhead than eager torch for a model this small.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

ONNX_DIR = "onnx"
"""Where ``export_onnx`` writes, inside the model directory."""
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_file(model_dir: str | Path, quantize: str | None) -> Path:
    """The ONNX file for ``quantize`` (``None`` or ``"int8"``) in ``model_dir``."""
    name = "model.onnx" if quantize is None else f"model.{quantize}.onnx"
    return Path(model_dir) / ONNX_DIR / name


@dataclass
class LightConfig:
    """The parts of a model's ``config.json`` the classifier reads, without transformers."""

    id2label: dict[int, str]
    num_labels: int
    problem_type: str | None = None
    domain_router: dict[str, Any] = field(default_factory=dict)

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
        )


class OnnxTokenizer:
    """The exported fast tokenizer, padding and truncating like the torch path."""

    def __init__(self, path: Path, pad_id: int) -> None:
        from tokenizers import Tokenizer

        self.backend_tokenizer = Tokenizer.from_file(str(path))
        self.backend_tokenizer.enable_padding(pad_id=pad_id)
        self._max_length: int | None = None

    def encode(self, texts: list[str], max_length: int) -> dict[str, np.ndarray]:
        """Tokenize ``texts`` into one padded int64 batch."""
        import numpy as np

        if max_length != self._max_length:
            self.backend_tokenizer.enable_truncation(max_length)
            self._max_length = max_length
        encodings = self.backend_tokenizer.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }


class OnnxModel:
    """An ONNX Runtime session that maps a tokenized batch to logits."""

    def __init__(self, path: Path, config: LightConfig, num_threads: int | None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = num_threads
        # One request's graph runs op after op; a second pool would only compete for cores.
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = {node.name for node in self.session.get_inputs()}
        self.config = config

    def __call__(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """Return the logits of a tokenized batch."""
        feeds = {name: value for name, value in encoded.items() if name in self.input_names}
        return self.session.run(["logits"], feeds)[0]


def load_onnx(
    model_dir: str, quantize: str | None, num_threads: int | None
) -> tuple[OnnxModel, OnnxTokenizer]:
    """Load an exported model and its tokenizer.

    Raises:
        ValueError: If the model has not been exported, or onnxruntime is missing.
    """
    path = onnx_file(model_dir, quantize)
    if not path.is_file():
        msg = (
            f"{model_dir!r} has no {ONNX_DIR}/{path.name}: export it once with "
            f"`python -m langchain_domain_router.optimize {model_dir}"
            f"{' --quantize ' + quantize if quantize else ''}`"
        )
        raise ValueError(msg)
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        msg = "backend='onnx' needs onnxruntime: pip install onnxruntime"
        raise ValueError(msg) from exc
    meta = json.loads((path.parent / "export.json").read_text(encoding="utf-8"))
    tokenizer = OnnxTokenizer(path.parent / "tokenizer.json", pad_id=int(meta["pad_id"]))
    return OnnxModel(path, LightConfig.read(model_dir), num_threads), tokenizer


def export_onnx(model_dir: str | Path, *, quantize: str | None = None) -> Path:
    """Export a saved classifier to ``model_dir/onnx/`` for ``backend="onnx"``.

    Writes the float32 graph (dynamic batch and sequence axes), the fast tokenizer
    exactly as ``AutoTokenizer`` configures it, and with ``quantize="int8"`` also a
    dynamically int8-quantised graph. The export is checked: logits must match torch.

    Args:
        model_dir: A directory saved with ``save_pretrained`` (config, weights, tokenizer).
        quantize: ``"int8"`` to write ``model.int8.onnx`` as well.

    Returns:
        The ONNX file for ``quantize``.

    Raises:
        ValueError: If the exported graph's logits differ from torch's.
    """
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import langchain_domain_router.modeling  # noqa: F401  (registers the project's model type)

    out = Path(model_dir) / ONNX_DIR
    out.mkdir(exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    sample = ["민법상 채권자대위권의 요건은?", "What is a Fourier transform? " * 8, "세금"]
    encoded = tokenizer(sample, padding=True, truncation=True, max_length=64, return_tensors="pt")
    names = [name for name in _INPUTS if name in encoded]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
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
    (out / "export.json").write_text(json.dumps({"pad_id": pad_id, "inputs": names}))
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            out / "model.onnx", onnx_file(model_dir, quantize), weight_type=QuantType.QInt8
        )
    onnx_model, onnx_tokenizer = load_onnx(str(model_dir), None, None)
    with torch.inference_mode():
        expected = model(**encoded).logits.numpy()
    got = onnx_model(onnx_tokenizer.encode(sample, 64))
    if not np.allclose(got, expected, atol=1e-4):
        diff = float(abs(got - expected).max())
        msg = f"the ONNX export of {model_dir} does not match torch (max diff {diff:.2g})"
        raise ValueError(msg)
    logger.info("exported %s to %s", model_dir, out)
    return onnx_file(model_dir, quantize)

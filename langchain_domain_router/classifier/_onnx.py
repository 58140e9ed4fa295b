"""The ONNX Runtime session and the one tokenisation path both backends share.

``export_onnx`` (``_onnx_export.py``; torch and ``onnx`` needed once) writes ``onnx/model.onnx``
(and ``model.int8.onnx``), the exact tokenizer the torch path uses and ``export.json``
into the model directory. At run time only ``onnxruntime``, ``tokenizers`` and
``numpy`` are imported: less memory, a faster start, and less per-call overhead than
eager torch for a model this small. Nothing here assumes a model family: input names
come from the graph and the tokenizer, the logits are the graph's first output.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_domain_router.classifier._chars import CHAR_IDS, char_cap, char_ids
from langchain_domain_router.classifier._settings import CALIBRATION_KEY, Calibration, Precision

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

ONNX_DIR = "onnx"
"""Where ``export_onnx`` writes, inside the model directory."""
EXPORT_META = "export.json"
"""The export's record: pad id, input names, the default graph and the int8 check."""
FEATURES_OUTPUT = "pooled"
"""The graph output holding the encoder's pooled features (the project's models)."""
ENSEMBLE_TYPE = "domain-router-ensemble"
"""The ``model_type`` of an ensemble's ``config.json`` (``_ensemble``): no transformers model."""
INT8_TOLERANCE_POINTS = 0.5
"""int8 becomes a model's default graph only when it loses at most this much accuracy."""


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
    """The graph ``export_onnx`` chose for ``model_dir`` (a quantised one only when checked)."""
    chosen = (read_export(model_dir) or {}).get("default")
    return "int8" if chosen == "int8" else "int4" if chosen == "int4" else "float32"


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
            domain_router=dict(raw.get(CALIBRATION_KEY) or {}),
            max_position_embeddings=raw.get("max_position_embeddings"),
            ngram_input=raw.get("ngram_input"),
            ngram_max_chars=raw.get("ngram_max_chars"),
        )


def token_cap(max_length: int | None, config: Any) -> int:
    """Tokens kept per question.

    ``max_length``, else the model's calibrated cap (or 128), never more than the model
    has position embeddings for.
    """
    cap = max_length or Calibration.of(config).max_length
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
        self.outputs = tuple(outputs)
        self.output_name = "logits" if "logits" in outputs else outputs[0]
        self.config = config
        self.path = path

    def __call__(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """Return the logits of a tokenized batch."""
        feeds = {name: encoded[name] for name in self.input_names}
        return self.session.run([self.output_name], feeds)[0]

    def features(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """Return the pooled features of a tokenized batch (the graph's ``pooled`` output).

        Raises:
            ValueError: If the export has no ``pooled`` output (exported before it had).
        """
        if FEATURES_OUTPUT not in self.outputs:
            msg = (
                f"{self.path} has no {FEATURES_OUTPUT!r} output: export the model again "
                "with `domain-router export-onnx`, or use backend='torch'"
            )
            raise ValueError(msg)
        feeds = {name: encoded[name] for name in self.input_names}
        return self.session.run([FEATURES_OUTPUT], feeds)[0]


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

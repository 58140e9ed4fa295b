"""The backends a classifier runs on: one small protocol, a torch and an ONNX Runtime one.

A backend turns a tokenized batch into logits; tokenising (``BatchTokenizer``), the
length-sorted chunking and the scoring are shared, so the run-time classifier and
training's calibration, evaluation and latency measurement compute the same numbers.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from langchain_domain_router.classifier._chars import char_cap
from langchain_domain_router.classifier._chunks import by_length_chunks
from langchain_domain_router.classifier._onnx import (
    BatchTokenizer,
    OnnxModel,
    load_onnx,
    token_cap,
)
from langchain_domain_router.classifier._packed import load_model
from langchain_domain_router.classifier._quiet import quiet_model_loading
from langchain_domain_router.classifier._runtime import ForwardSlots, forward_passes
from langchain_domain_router.classifier._settings import Precision

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

_DEFAULT_LABEL = re.compile(r"^LABEL_\d+$")


class TextEncoder(Protocol):
    """Texts in, one padded batch of model inputs out (``BatchTokenizer`` is one)."""

    max_length: int
    """Tokens kept per text."""

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Tokenize ``texts`` into one batch."""


class Backend(Protocol):
    """A loaded model: its tokenizer, its config, and one forward pass.

    Example:
        ```python
        backend = load_backend("models/default", "onnx", threads=1)
        backend.logits(backend.prepare(backend.tokenizer.encode(["미분이란?"])))
        ```
    """

    name: Literal["torch", "onnx"]
    forward_slots: ForwardSlots
    """Held by each forward pass; ``forward_slots.passes`` may run at once."""

    @property
    def model(self) -> Any:
        """The loaded model (a ``transformers`` model, an ONNX Runtime session wrapper...)."""

    @property
    def tokenizer(self) -> TextEncoder:
        """Texts to this model's inputs."""

    @property
    def config(self) -> Any:
        """The model's config: ``id2label``, ``num_labels``, ``problem_type``, calibration."""

    def prepare(self, encoded: dict[str, np.ndarray]) -> dict[str, Any]:
        """Turn a tokenized batch (numpy arrays) into the model's inputs."""

    def logits(self, inputs: dict[str, Any]) -> np.ndarray:
        """Run one forward pass; return float logits as a numpy array."""

    def features(self, inputs: dict[str, Any]) -> np.ndarray:
        """Run the encoder; return its mean-pooled last hidden state as a numpy array."""


@dataclass
class OnnxBackend:
    """An exported graph run with ONNX Runtime (no torch import).

    Example:
        ```python
        model, tokenizer = load_onnx("models/default", None, 1, None)
        OnnxBackend(model, tokenizer)
        ```
    """

    model: OnnxModel
    tokenizer: BatchTokenizer
    forward_slots: ForwardSlots = field(default_factory=ForwardSlots)
    name: Literal["torch", "onnx"] = "onnx"

    @property
    def config(self) -> Any:
        """The model's ``config.json``, read without transformers."""
        return self.model.config

    def prepare(self, encoded: dict[str, np.ndarray]) -> dict[str, Any]:
        """ONNX Runtime takes the numpy arrays as they are."""
        return dict(encoded)

    def logits(self, inputs: dict[str, Any]) -> np.ndarray:
        """Run the graph."""
        return self.model(inputs)

    def features(self, inputs: dict[str, Any]) -> np.ndarray:
        """Run the graph up to its ``pooled`` output."""
        return self.model.features(inputs)


@dataclass
class TorchBackend:
    """A ``transformers`` sequence classifier run with torch.

    Example:
        ```python
        backend = TorchBackend.from_model(model, AutoTokenizer.from_pretrained(path))
        ```
    """

    model: PreTrainedModel
    tokenizer: BatchTokenizer
    device: str = "cpu"
    forward_slots: ForwardSlots = field(default_factory=ForwardSlots)
    name: Literal["torch", "onnx"] = "torch"

    @classmethod
    def from_model(
        cls, model: PreTrainedModel, hf_tokenizer: Any, *, max_length: int | None = None
    ) -> TorchBackend:
        """Wrap a loaded model and its fast tokenizer (training uses this in memory).

        The tokenizer is copied, so padding and truncation set here do not leak into the
        caller's tokenizer.

        Raises:
            ValueError: If the tokenizer is not a fast one.
        """
        from tokenizers import Tokenizer

        backend_tokenizer = getattr(hf_tokenizer, "backend_tokenizer", None)
        if backend_tokenizer is None:
            msg = "the model has no fast tokenizer (tokenizer.json)"
            raise ValueError(msg)
        pad_id = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else 0
        tokenizer = BatchTokenizer(
            Tokenizer.from_str(backend_tokenizer.to_str()),
            pad_id=pad_id,
            input_names=hf_tokenizer.model_input_names,
            max_length=token_cap(max_length, model.config),
            char_cap=char_cap(model.config),
        )
        device = str(next(model.parameters()).device)
        return cls(model=model, tokenizer=tokenizer, device=device)

    @property
    def config(self) -> Any:
        """The ``transformers`` config."""
        return self.model.config

    def prepare(self, encoded: dict[str, np.ndarray]) -> dict[str, Any]:
        """Torch tensors on the model's device."""
        import torch

        return {key: torch.from_numpy(value).to(self.device) for key, value in encoded.items()}

    def logits(self, inputs: dict[str, Any]) -> np.ndarray:
        """Run the model in inference mode (restoring training mode if it was on)."""
        return self._run(inputs, features=False)

    def features(self, inputs: dict[str, Any]) -> np.ndarray:
        """The model's ``pooled`` output, else its mean-pooled last hidden state."""
        return self._run(inputs, features=True)

    def _run(self, inputs: dict[str, Any], *, features: bool) -> np.ndarray:
        import torch

        from langchain_domain_router.classifier.modeling import mean_pool

        training = self.model.training
        if training:
            self.model.eval()
        try:
            with torch.inference_mode():
                if not features:
                    return self.model(**inputs).logits.float().cpu().numpy()
                out = self.model(**inputs, output_hidden_states=True)
                pooled = getattr(out, "pooled", None)
                if pooled is None:
                    pooled = mean_pool(out.hidden_states[-1], inputs["attention_mask"])
                return pooled.float().cpu().numpy()
        finally:
            if training:
                self.model.train()


def backend_logits(
    backend: Backend, texts: Sequence[str], *, batch_size: int = 32, max_chars: int = 2048
) -> np.ndarray:
    """Raw logits (no temperature) of ``texts``, one forward pass per length-sorted chunk.

    Args:
        backend: The loaded model.
        texts: Question texts.
        batch_size: Questions per forward pass.
        max_chars: Characters kept before tokenizing.

    Returns:
        An array of shape ``(len(texts), num_labels)``.
    """
    return run_chunks(
        backend, texts, backend.logits, int(backend.config.num_labels), batch_size, max_chars
    )


def backend_features(
    backend: Backend, texts: Sequence[str], *, batch_size: int = 32, max_chars: int = 2048
) -> np.ndarray:
    """The encoder's pooled features of ``texts``, ``(len(texts), hidden)``.

    Chunked and cut as :func:`backend_logits` does, with the same arguments.
    """
    return run_chunks(backend, texts, backend.features, 0, batch_size, max_chars)


def run_chunks(
    backend: Backend,
    texts: Sequence[str],
    forward: Callable[[dict[str, Any]], np.ndarray],
    width: int,
    batch_size: int,
    max_chars: int,
) -> np.ndarray:
    """Stack ``forward``'s rows for ``texts``: one pass per length-sorted chunk, in order.

    ``width`` is the row width of an empty result.
    """
    import numpy as np

    def run(chunk: list[str]) -> list[np.ndarray]:
        encoded = backend.tokenizer.encode([text[:max_chars] for text in chunk])
        with backend.forward_slots:
            return list(forward(backend.prepare(encoded)))

    rows = by_length_chunks(texts, batch_size, run, workers=backend.forward_slots.passes)
    return np.stack(rows) if rows else np.zeros((0, width))


def model_labels(config: Any) -> list[str]:
    """The labels in ``config.id2label`` order."""
    id2label = cast("dict[int, str]", config.id2label)
    return [id2label[i] for i in range(int(config.num_labels))]


def quantize(model: PreTrainedModel, device: str) -> PreTrainedModel:
    """Return ``model`` with dynamic int8 ``nn.Linear`` layers (CPU only).

    The embeddings and layer norms stay float; activations are quantised on the fly.

    Raises:
        ValueError: If ``device`` is not the CPU.
    """
    import torch
    from torch.ao.quantization import quantize_dynamic

    if torch.device(device).type != "cpu":
        msg = f"quantize='int8' runs on the CPU only, not on device={device!r}"
        raise ValueError(msg)
    with warnings.catch_warnings():
        # torch deprecates the quantised tensor API in favour of torchao, which is not
        # a dependency; the kernels still ship and are what this measures.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _load_torch(
    path: str, *, device: str, quantize_to: Precision | None, threads: int, max_length: int | None
) -> TorchBackend:
    import torch
    from transformers import AutoTokenizer

    import langchain_domain_router.classifier.modeling  # noqa: F401  (registers the project's model type)

    if quantize_to == "int4":
        msg = "quantize='int4' runs the exported 4-bit graph: use the ONNX backend"
        raise ValueError(msg)
    try:
        with quiet_model_loading():
            hf_tokenizer = AutoTokenizer.from_pretrained(path)
            # float32 even where the file holds fp16: CPUs compute fp16 slowly.
            model: Any = load_model(path)
    except (OSError, ValueError) as exc:
        msg = f"could not load a sequence-classification model from {path!r}: {exc}"
        raise ValueError(msg) from exc
    if getattr(hf_tokenizer, "backend_tokenizer", None) is None:
        msg = f"{path!r} has no fast tokenizer (tokenizer.json)"
        raise ValueError(msg)
    model.to(device).eval()
    if quantize_to == "int8":
        model = quantize(model, device)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
        logger.info("torch.set_num_threads(%d) for %s", threads, path)
    backend = TorchBackend.from_model(model, hf_tokenizer, max_length=max_length)
    backend.device = device
    return backend


def load_backend(
    path: str,
    name: Literal["torch", "onnx"],
    *,
    threads: int,
    device: str = "cpu",
    quantize_to: Precision | None = None,
    max_length: int | None = None,
) -> Backend:
    """Load ``path`` on backend ``name``, check its labels and warm it up.

    Args:
        path: A model directory or hub id.
        name: ``"torch"`` or ``"onnx"``.
        threads: Intra-op threads.
        device: The torch device.
        quantize_to: The precision to run (``None``: the export's choice / float32).
        max_length: Token cap; ``None`` takes the model's calibrated one.

    Returns:
        The backend, with every shape traffic brings already run once.

    Raises:
        ValueError: If the model cannot be loaded or its ``id2label`` names no domains.
    """
    backend: Backend
    if name == "onnx":
        model, tokenizer = load_onnx(path, quantize_to, threads, max_length)
        backend = OnnxBackend(model, tokenizer)
    else:
        backend = _load_torch(
            path, device=device, quantize_to=quantize_to, threads=threads, max_length=max_length
        )
    backend.forward_slots = ForwardSlots(forward_passes(threads))
    labels = model_labels(backend.config)
    if all(_DEFAULT_LABEL.match(label) for label in labels):
        msg = f"{path!r}: config.json has no id2label naming the domains"
        raise ValueError(msg)
    # The first calls of a session allocate its memory arena and pick kernels per shape;
    # doing that at load keeps it out of the first requests' latency (and the p99).
    short, long = "warm up", "warm up " * backend.tokenizer.max_length
    for texts in ([short], [long], [short, long] * 4):
        backend.logits(backend.prepare(backend.tokenizer.encode(texts)))
    logger.debug("loaded %s (%d labels, %s backend)", path, len(labels), name)
    return backend

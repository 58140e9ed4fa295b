"""The model behind a classifier: loaded once, texts in, predictions out.

``ClassifierModel`` loads a checkpoint on its backend (lazily, once, thread-safely), reads
how its logits are scored (calibration, labels, taxonomy) and runs ``preprocess`` ->
``_forward`` -> ``postprocess`` over chunks of texts, with the prediction cache.
``DomainClassifier`` puts the Runnable interface, the reading of inputs and request
coalescing on top; fitting own domains reads features through this class alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar, cast

from pydantic import ConfigDict, PrivateAttr

from langchain_domain_router.classifier._backends import (
    Backend,
    TextEncoder,
    backend_features,
    backend_logits,
    model_labels,
)
from langchain_domain_router.classifier._cache import LRUCache, text_normaliser
from langchain_domain_router.classifier._chunks import by_length_chunks
from langchain_domain_router.classifier._loading import resolve_backend, shared_backend
from langchain_domain_router.classifier._predictions import (
    check_local_model,
    default_model_path,
    resolve_model_path,
    to_predictions,
)
from langchain_domain_router.classifier._scoring import Scoring
from langchain_domain_router.classifier._settings import (
    Calibration,
    ClassifierOptions,
    ClassifierSettings,
)
from langchain_domain_router.schema import DomainPrediction
from langchain_domain_router.taxonomy import Taxonomy

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import torch

# The package logger: "classifier ... ready" lines name the classifier, not a file.
logger = logging.getLogger(__package__ or __name__)
_Part = TypeVar("_Part")


class ClassifierModel(ClassifierOptions):
    """A sequence-classification checkpoint on its backend, with its scoring and cache.

    The fields besides ``model_path`` are the ``ClassifierOptions``. Nothing loads until
    first use (or ``load()``); classifiers of one process with the same directory and
    loading options share one loaded model.

    Example:
        ```python
        model = ClassifierModel.from_pretrained("my-router", backend="torch")
        model.features(["민법상 채권자대위권의 요건은?"]).shape  # (1, hidden)
        model.classify_texts(["세금 신고 기한이 언제예요?"])[0].label
        ```
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    model_path: str
    """A local model directory or a Hugging Face hub id."""

    _loaded: Backend | None = PrivateAttr(default=None)
    _scoring: Scoring | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _cache: LRUCache[DomainPrediction] | None = PrivateAttr(default=None)
    _cache_key: Callable[[str], str] | None = PrivateAttr(default=None)

    @classmethod
    def from_pretrained(cls, path_or_id: str | Path, **options: Any) -> Self:
        """Create a classifier for a local model directory or a hub id.

        Args:
            path_or_id: A directory saved with ``save_pretrained`` or a hub id such as
                ``monologg/koelectra-base-v3-discriminator`` (fine-tuned).
            **options: ``ClassifierOptions`` fields (``device``, ``max_length``,
                ``batch_size``, ``top_k``, ``context_turns``, ``coalesce_ms``...).

        Returns:
            The classifier; weights load on first use.

        Raises:
            ValueError: If a local path does not exist or has no ``config.json``.
        """
        check_local_model(str(path_or_id))
        return cls(model_path=str(path_or_id), **options)

    @classmethod
    def default(cls, **kwargs: Any) -> Self:
        """Load the default model embedded in the package (no network needed).

        Args:
            **kwargs: Options passed to ``from_pretrained``.

        Returns:
            The classifier for the embedded model.
        """
        return cls.from_pretrained(default_model_path(), **kwargs)

    @classmethod
    def from_settings(cls, settings: ClassifierSettings) -> Self:
        """Create the classifier a router configuration's ``classifier`` block names.

        Args:
            settings: The model (``"default"``, a directory or a hub id) and the options.

        Returns:
            The classifier; weights load on first use.

        Raises:
            ValueError: If a local path does not exist or has no ``config.json``.
        """
        options = settings.model_dump(exclude={"model"})
        return cls.from_pretrained(resolve_model_path(settings.model), **options)

    # -- loading -------------------------------------------------------------------

    def load(self) -> Self:
        """Load tokenizer and weights now instead of on first use.

        Returns:
            The classifier itself.

        Raises:
            ValueError: If the model cannot be loaded or has no usable ``id2label``.
        """
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._load()
        return self

    @property
    def resolved_backend(self) -> Literal["torch", "onnx"]:
        """The backend ``load`` uses: ``backend`` with ``"auto"`` decided."""
        return resolve_backend(self.model_path, self)

    def _load(self) -> None:
        loaded = shared_backend(self.model_path, self)
        # Read once: every prediction needs it, and each read built a pydantic model.
        config = loaded.config
        self._scoring = Scoring(
            Calibration.of(config),
            model_labels(config),
            getattr(config, "problem_type", None),
            taxonomy=Taxonomy.of(config),
        )
        if self.cache_size:
            self._cache = LRUCache(self.cache_size)
            self._cache_key = text_normaliser(loaded.tokenizer)
        self._loaded = loaded
        logger.debug("classifier %s ready (%s backend)", self.model_path, loaded.name)

    @property
    def loaded_backend(self) -> Backend:
        """The loaded backend (loading it on first use)."""
        return _loaded_part(self.load()._loaded)

    @property
    def model(self) -> Any:
        """The loaded model: a ``transformers`` model, or an ONNX Runtime session wrapper."""
        return self.loaded_backend.model

    @property
    def tokenizer(self) -> TextEncoder:
        """The loaded tokenizer (``backend_tokenizer`` is the ``tokenizers.Tokenizer``)."""
        return self.loaded_backend.tokenizer

    @property
    def config(self) -> Any:
        """The model's config (``id2label``, ``problem_type``, the calibration block)."""
        return self.loaded_backend.config

    @property
    def scoring(self) -> Scoring:
        """How logits become probabilities and predictions (read from the model at load)."""
        return _loaded_part(self.load()._scoring)

    @property
    def calibration(self) -> Calibration:
        """The temperature and thresholds the model was calibrated with."""
        return self.scoring.calibration

    @property
    def labels(self) -> list[str]:
        """The labels in the model's ``id2label`` order."""
        return self.scoring.labels

    @property
    def taxonomy(self) -> Taxonomy:
        """The model's taxonomy: its labels, display names and groups (from its config)."""
        return cast("Taxonomy", self.scoring.taxonomy)

    @property
    def model_version(self) -> str:
        """The model's version string (its calibration's ``model_version``, else its path)."""
        return self.scoring.calibration.model_version or self.model_path

    @property
    def temperature(self) -> float:
        """The temperature fitted on validation data (1.0 when the model has none)."""
        return self.calibration.temperature

    # -- preprocess -> _forward -> postprocess -------------------------------------

    def preprocess(self, texts: Sequence[str]) -> dict[str, Any]:
        """Tokenize ``texts`` into one padded batch.

        Torch tensors on the model's device for the torch backend, numpy arrays for ONNX.
        """
        backend = self.loaded_backend
        return backend.prepare(backend.tokenizer.encode([text[: self.max_chars] for text in texts]))

    def _forward(self, encoded: dict[str, Any]) -> np.ndarray:
        backend = self.loaded_backend
        with backend.forward_slots:
            return backend.logits(encoded)

    def scores(self, logits: np.ndarray | torch.Tensor) -> np.ndarray:
        """Turn logits into probabilities, following the model's ``problem_type``."""
        return self.scoring.probabilities(logits)

    def postprocess(self, logits: np.ndarray | torch.Tensor) -> list[DomainPrediction]:
        """Turn a batch of logits into sorted predictions."""
        scoring = self.scoring
        return to_predictions(
            scoring.probabilities(logits),
            scoring,
            top_k=self.top_k,
            model_version=self.model_version,
        )

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        """Return raw logits (no temperature) for ``texts``, one forward pass per chunk.

        Args:
            texts: Question texts.

        Returns:
            An array of shape ``(len(texts), num_labels)``.
        """
        return backend_logits(
            self.loaded_backend, texts, batch_size=self.batch_size, max_chars=self.max_chars
        )

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """Return the encoder's pooled features for ``texts``: what the heads read.

        On the ONNX backend the export's ``pooled`` output (exports made before it had
        one need ``domain-router export-onnx`` again); on torch the model's.

        Args:
            texts: Question texts.

        Returns:
            An array of shape ``(len(texts), hidden)``, one forward pass per chunk.
        """
        return backend_features(
            self.loaded_backend, texts, batch_size=self.batch_size, max_chars=self.max_chars
        )

    def classify_texts(self, texts: Sequence[str]) -> list[DomainPrediction]:
        """Classify already-extracted texts, one forward pass per chunk of ``batch_size``.

        Args:
            texts: Question texts.

        Returns:
            One prediction per text, in order.
        """
        self.load()
        if self._cache is None or self._cache_key is None:
            return self._classify_uncached(texts)
        keys = [self._cache_key(text[: self.max_chars]) for text in texts]
        return self._cache.get_or_compute(keys, texts, self._classify_uncached)

    def _classify_uncached(self, texts: Sequence[str]) -> list[DomainPrediction]:
        return by_length_chunks(
            texts,
            self.batch_size,
            lambda chunk: self.postprocess(self._forward(self.preprocess(chunk))),
            workers=self.loaded_backend.forward_slots.passes,
        )


def _loaded_part(part: _Part | None) -> _Part:
    """Return what ``load()`` set (it raises rather than leave it unset)."""
    if part is None:  # pragma: no cover - load() sets it or raises
        msg = "the model did not load"
        raise RuntimeError(msg)
    return part

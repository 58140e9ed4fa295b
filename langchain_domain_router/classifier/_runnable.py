"""The domain classifier: a Hugging Face sequence classifier as a LangChain Runnable."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar, cast

from langchain_core.runnables import RunnableConfig, RunnableSerializable, ensure_config
from langchain_core.runnables.config import get_callback_manager_for_config, run_in_executor
from pydantic import ConfigDict, PrivateAttr
from typing_extensions import override

from langchain_domain_router._inputs import (
    RouterInput,
    check_batch,
    check_config,
    extract_question,
)
from langchain_domain_router.classifier._backends import (
    Backend,
    backend_features,
    backend_logits,
    intra_op_threads,
    model_labels,
    resolve_backend,
    shared_backend,
)
from langchain_domain_router.classifier._cache import LRUCache, text_normaliser
from langchain_domain_router.classifier._chunks import by_length_chunks
from langchain_domain_router.classifier._coalesce import Coalescer
from langchain_domain_router.classifier._onnx import BatchTokenizer
from langchain_domain_router.classifier._predictions import (
    check_local_model,
    default_model_path,
    resolve_model_path,
    to_predictions,
)
from langchain_domain_router.classifier._runtime import forward_passes
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

    from langchain_domain_router.routes import RoutesSource

# The package logger: "classifier ... ready" lines name the classifier, not a file.
logger = logging.getLogger(__package__ or __name__)
_Part = TypeVar("_Part")


class DomainClassifier(RunnableSerializable[RouterInput, DomainPrediction], ClassifierOptions):
    """Label a question with a domain of its model's taxonomy (KMMLU for the default model).

    Any Hugging Face sequence-classification checkpoint works; labels and their order
    come from its ``config.id2label``, groups and display names from its ``config.json``
    (``taxonomy``); ``fit_domains`` fits one for your own domains from a few examples.
    The model loads lazily (once, thread-safely) on first use. ``batch`` sorts the
    questions by length and runs one padded forward pass per chunk of ``batch_size``,
    chunks side by side on the cores the process may use.

    The fields besides ``model_path`` are the ``ClassifierOptions`` (a router config's
    ``classifier`` block sets the same ones): the backend (ONNX Runtime when the model
    ships an export, else torch), and the speed options of ``docs/performance.md``.
    Classifiers of one process with the same directory and loading options share one
    loaded model, whose concurrent forward passes never ask for more threads than cores.

    Example:
        ```python
        from langchain_domain_router import DomainClassifier

        classifier = DomainClassifier.default()
        prediction = classifier.invoke("민법상 채권자대위권의 요건은?")
        print(prediction.label, round(prediction.score, 2))
        classifier.batch(["세금 신고 기한이 언제예요?", "What is a Fourier transform?"])

        # a server with many concurrent async callers
        fast = DomainClassifier.default(coalesce_ms=0, cache_size=10_000)
        torch_path = DomainClassifier.default(backend="torch")  # the training backend
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
    _coalescer: Coalescer[DomainPrediction] | None = PrivateAttr(default=None)
    _coalescer_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

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
    def fit_domains(
        cls,
        routes: RoutesSource,
        *,
        output_dir: str | Path,
        base: str | Path = "default",
        feedback: str | Path | None = None,
        **options: Any,
    ) -> Self:
        """Fit a classifier for your own domains from a few examples each, and load it.

        The base model's encoder stays frozen; a head over its pooled features is fitted
        on the examples, with an out-of-scope threshold fitted on the routes'
        ``out_of_scope`` questions and the off-topic questions the package ships. The
        model directory (with ``fit_report.json``) is what ``domain-router fit-domains``
        writes; a router config names it as ``classifier: {model: DIR}``.

        Args:
            routes: A routes YAML/TOML/JSON file, its mapping, or a list of ``Route``.
            output_dir: Where the model directory is written.
            base: The model whose encoder is used (``"default"``: the embedded model).
            feedback: A ``record_feedback`` JSONL file whose rows join the examples.
            **options: ``ClassifierOptions`` fields for the returned classifier.

        Returns:
            The fitted classifier (``Taxonomy`` of its own domains, groups, threshold).

        Raises:
            ValueError: If the routes, the feedback or the base model are unusable.
        """
        from langchain_domain_router.classifier._fit_domains import fit_domains

        report = fit_domains(routes, output_dir, base=base, feedback=feedback)
        logger.info("%s", report.summary())
        return cls.from_pretrained(output_dir, **options)

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
    def tokenizer(self) -> BatchTokenizer:
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

    def _classify_inputs(self, inputs: list[RouterInput]) -> list[Exception | DomainPrediction]:
        results: list[Exception | DomainPrediction] = []
        texts: list[str] = []
        slots: list[int] = []
        for value in inputs:
            try:
                texts.append(extract_question(value, context_turns=self.context_turns))
                slots.append(len(results))
                results.append(ValueError("unclassified"))
            except (TypeError, ValueError) as exc:
                results.append(exc)
        for slot, prediction in zip(slots, self.classify_texts(texts), strict=True):
            results[slot] = prediction
        return results

    def classify(self, value: RouterInput) -> DomainPrediction:
        """Classify one input like ``invoke``, without the Runnable callback layer (no run).

        Args:
            value: What ``invoke`` accepts.

        Returns:
            The prediction.
        """
        text = extract_question(value, context_turns=self.context_turns)
        return self.classify_texts([text])[0]

    async def aclassify(self, value: RouterInput) -> DomainPrediction:
        """Classify one input like ``ainvoke`` (coalesced when on), without callbacks.

        Args:
            value: What ``ainvoke`` accepts.

        Returns:
            The prediction.
        """
        if self.coalesce_ms is None:
            return await run_in_executor(None, self.classify, value)
        return await self._aclassify_coalesced(value)

    # -- Runnable interface ----------------------------------------------------------

    @override
    def invoke(
        self, input: RouterInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> DomainPrediction:
        config = ensure_config(check_config(config))
        if not _recorded(config):
            return self.classify(input)  # nobody records runs: skip their bookkeeping
        return self._call_with_config(self.classify, input, config, run_type="chain")

    async def _aclassify_coalesced(self, value: RouterInput) -> DomainPrediction:
        text = extract_question(value, context_turns=self.context_turns)
        if self._coalescer is None:
            # Not self._lock: a model load holds that for seconds, and this runs on the loop.
            with self._coalescer_lock:
                if self._coalescer is None:
                    self._coalescer = Coalescer(
                        self.classify_texts,
                        max_batch=self.batch_size,
                        window_s=(self.coalesce_ms or 0.0) / 1000,
                        workers=forward_passes(intra_op_threads(self)),
                    )
        return await self._coalescer.submit(text)

    @override
    async def ainvoke(
        self, input: RouterInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> DomainPrediction:
        check_config(config)
        if self.coalesce_ms is None:
            return await run_in_executor(config, self.invoke, input, config)
        return await self._acall_with_config(
            self._aclassify_coalesced, input, config, run_type="chain"
        )

    @override
    def batch(
        self,
        inputs: list[RouterInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[DomainPrediction]:
        inputs = check_batch(inputs, config)
        if not inputs:
            return []
        if not isinstance(config, list) and not _recorded(ensure_config(config)):
            # Nobody records runs: no callback manager and two events per input.
            results = self._classify_inputs(inputs)
            failed = next((r for r in results if isinstance(r, Exception)), None)
            if failed is not None and not return_exceptions:
                raise failed
            return cast("list[DomainPrediction]", results)
        return self._batch_with_config(
            self._classify_inputs,
            inputs,
            config,
            return_exceptions=return_exceptions,
            run_type="chain",
        )

    @override
    async def abatch(
        self,
        inputs: list[RouterInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        **kwargs: Any,
    ) -> list[DomainPrediction]:
        # ``batch`` off the event loop, with the same options; its arguments are checked
        # here, before the first config picks the executor's context.
        inputs = check_batch(inputs, config)
        first = next(iter(config), None) if isinstance(config, list) else config
        return await run_in_executor(
            cast("RunnableConfig | None", first), self.batch, inputs, config, **kwargs
        )


def _recorded(config: RunnableConfig) -> bool:
    """Whether a callback handler or tracer would record this call's run."""
    return bool(get_callback_manager_for_config(config).handlers)


def _loaded_part(part: _Part | None) -> _Part:
    """Return what ``load()`` set (it raises rather than leave it unset)."""
    if part is None:  # pragma: no cover - load() sets it or raises
        msg = "the model did not load"
        raise RuntimeError(msg)
    return part

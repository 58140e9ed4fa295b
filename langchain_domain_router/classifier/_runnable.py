"""The domain classifier: a Hugging Face sequence classifier as a LangChain Runnable."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, cast

from langchain_core.runnables import RunnableConfig, RunnableSerializable, ensure_config
from langchain_core.runnables.config import get_callback_manager_for_config, run_in_executor
from pydantic import ConfigDict, PrivateAttr
from typing_extensions import override

from langchain_domain_router._inputs import (
    RouterInput,
    check_batch,
    check_config,
    take_question,
)
from langchain_domain_router.classifier._coalesce import Coalescer
from langchain_domain_router.classifier._loading import intra_op_threads
from langchain_domain_router.classifier._model import ClassifierModel
from langchain_domain_router.classifier._runtime import forward_passes
from langchain_domain_router.schema import DomainPrediction

if TYPE_CHECKING:
    from langchain_domain_router.routes import RoutesSource

# The package logger: "classifier ... ready" lines name the classifier, not a file.
logger = logging.getLogger(__package__ or __name__)


class DomainClassifier(RunnableSerializable[RouterInput, DomainPrediction], ClassifierModel):
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

    _coalescer: Coalescer[DomainPrediction] | None = PrivateAttr(default=None)
    _coalescer_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

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

    def _text(self, value: RouterInput) -> str:
        """The text to classify in ``value``, read once at this entry (or already read)."""
        question = take_question(value, question_last=False)
        return question.context_text(self.context_turns)

    def _classify_inputs(self, inputs: list[RouterInput]) -> list[Exception | DomainPrediction]:
        results: list[Exception | DomainPrediction] = []
        texts: list[str] = []
        slots: list[int] = []
        for value in inputs:
            try:
                texts.append(self._text(value))
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
        text = self._text(value)
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
        text = self._text(value)
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

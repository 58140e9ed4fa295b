"""The domain classifier: a Hugging Face sequence classifier as a LangChain Runnable."""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, cast

from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, PrivateAttr
from typing_extensions import override

from langchain_domain_router._cache import LRUCache, text_normaliser
from langchain_domain_router._chars import char_cap
from langchain_domain_router._coalesce import Coalescer
from langchain_domain_router._inputs import (
    RouterInput,
    check_batch,
    check_config,
    extract_question,
)
from langchain_domain_router._onnx import (
    BatchTokenizer,
    OnnxModel,
    Precision,
    load_onnx,
    onnx_ready,
    token_cap,
    warm_up,
)
from langchain_domain_router._optimize import by_length_chunks, quantize
from langchain_domain_router._quiet import quiet_model_loading
from langchain_domain_router._runtime import MODELS, LoadedModel, default_threads, directory_stamp
from langchain_domain_router._taxonomy import SUPERCATEGORIES, supercategory_of
from langchain_domain_router.schema import DomainPrediction, LabelScore

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import torch
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_DEFAULT_LABEL = re.compile(r"^LABEL_\d+$")


def default_model_path() -> Path:
    """Return the directory of the default model embedded in the package."""
    return Path(str(resources.files("langchain_domain_router") / "models" / "default"))


def _check_local_model(path_or_id: str) -> None:
    """Fail early, and clearly, when a local model directory is missing or incomplete."""
    path = Path(path_or_id).expanduser()
    looks_local = path.exists() or path.is_absolute() or path_or_id.startswith((".", "~"))
    if not looks_local and _HUB_ID.match(path_or_id):
        return
    if not path.is_dir():
        msg = f"model directory not found: {path_or_id!r}"
        raise ValueError(msg)
    if not (path / "config.json").is_file():
        msg = f"{path_or_id!r} is not a model directory: it has no config.json"
        raise ValueError(msg)


@functools.lru_cache(maxsize=8)
def _membership(labels: tuple[str, ...]) -> np.ndarray:
    """Which labels belong to which supercategory, as a 0/1 matrix (labels x supercategories).

    One matrix product per batch then gives every row's supercategory mass, instead of a
    Python loop over every label of every row.
    """
    import numpy as np

    return np.array(
        [[supercategory_of(label) == sup for sup in SUPERCATEGORIES] for label in labels],
        dtype=np.float64,
    )


def _labels(config: Any) -> list[str]:
    id2label = cast("dict[int, str]", config.id2label)
    return [id2label[i] for i in range(int(config.num_labels))]


class DomainClassifier(RunnableSerializable[RouterInput, DomainPrediction]):
    """Label a question with its KMMLU domain using a sequence-classification model.

    Any Hugging Face sequence-classification checkpoint works; labels and their order
    come from its ``config.id2label``. The model loads lazily (once, thread-safely) on
    first use. ``batch`` runs one padded forward pass per chunk of ``batch_size``, with
    the questions sorted by length so each chunk pads little.

    The backend is chosen at load: ``backend="auto"`` (the default) runs the model's
    ONNX export with ONNX Runtime when the directory has one and ``onnxruntime`` is
    installed (the embedded default model ships one), and torch otherwise; ``"onnx"``
    and ``"torch"`` force one. Classifiers of one process that load the same directory
    with the same backend, precision, device, threads and token cap share one loaded
    model (``default()`` and a router config's ``model: default`` load it once).

    Speed options (see ``docs/performance.md``): ``coalesce_ms`` gathers concurrent
    ``ainvoke`` calls into one forward pass; ``cache_size`` keeps an LRU cache of
    predictions; ``num_threads`` sets the intra-op threads (default: half the usable
    cores, 1 to 4); ``quantize`` picks the float32 or int8 graph. Forward passes of one
    model never overlap, so concurrent callers do not oversubscribe the CPU cores.

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
    device: str = "cpu"
    """The torch device to run on."""
    max_length: int | None = Field(default=None, gt=0)
    """Token cap per question; ``None`` takes the model's own (or 128)."""
    batch_size: int = Field(default=32, gt=0)
    """How many questions one forward pass takes in ``batch``."""
    top_k: int = Field(default=5, gt=0)
    """How many labels each prediction lists."""
    context_turns: int = Field(default=0, ge=0)
    """For message lists: how many earlier human turns to prepend to the last one."""
    max_chars: int = Field(default=2048, gt=0)
    """Characters kept before tokenizing: a 1 MB question costs no more than a long one."""
    coalesce_ms: float | None = Field(default=None, ge=0)
    """Gather concurrent ``ainvoke`` calls for up to this many milliseconds into one
    forward pass (calls that arrive while a pass runs join the next one, even with 0);
    ``None`` runs each call on its own in an executor thread."""
    cache_size: int = Field(default=0, ge=0)
    """Predictions kept in an LRU cache keyed on the normalised question; 0 turns it off."""
    num_threads: int | None = Field(default=None, gt=0)
    """Intra-op threads of the forward pass; ``None``: half the cores this process may use
    (affinity and cgroup quota), 1 to 4. Torch's setting is process-wide
    (``torch.set_num_threads``); ONNX Runtime's is the session's."""
    quantize: Precision | None = None
    """``"int8"``: the int8 graph (ONNX) or dynamic int8 linear layers (torch, CPU only);
    ``"float32"``: full precision; ``None``: the graph the ONNX export chose (int8 only
    where it was measured within 0.5 accuracy points), full precision on torch."""
    backend: Literal["auto", "torch", "onnx"] = "auto"
    """``"onnx"`` runs the graph ``domain-router export-onnx`` wrote with ONNX Runtime,
    without importing torch; ``"torch"`` the saved weights; ``"auto"`` ONNX when the
    model has an export and onnxruntime is installed (on the CPU), else torch."""

    _loaded: LoadedModel | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _cache: LRUCache[DomainPrediction] | None = PrivateAttr(default=None)
    _cache_key: Callable[[str], str] | None = PrivateAttr(default=None)
    _coalescer: Coalescer[DomainPrediction] | None = PrivateAttr(default=None)
    _coalescer_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        *,
        device: str = "cpu",
        max_length: int | None = None,
        batch_size: int = 32,
        **kwargs: Any,
    ) -> Self:
        """Create a classifier for a local model directory or a hub id.

        Args:
            path_or_id: A directory saved with ``save_pretrained`` or a hub id such as
                ``monologg/koelectra-base-v3-discriminator`` (fine-tuned).
            device: The torch device, e.g. ``"cpu"`` or ``"cuda"``.
            max_length: Token cap per question.
            batch_size: Questions per forward pass in ``batch``.
            **kwargs: Other fields (``top_k``, ``context_turns``, ``max_chars``,
                ``coalesce_ms``, ``cache_size``, ``num_threads``, ``quantize``).

        Returns:
            The classifier; weights load on first use.

        Raises:
            ValueError: If a local path does not exist or has no ``config.json``.
        """
        _check_local_model(str(path_or_id))
        return cls(
            model_path=str(path_or_id),
            device=device,
            max_length=max_length,
            batch_size=batch_size,
            **kwargs,
        )

    @classmethod
    def default(cls, **kwargs: Any) -> Self:
        """Load the default model embedded in the package (no network needed).

        Args:
            **kwargs: Options passed to ``from_pretrained``.

        Returns:
            The classifier for the embedded model.
        """
        return cls.from_pretrained(default_model_path(), **kwargs)

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
        if self.backend != "auto":
            return self.backend
        on_cpu = self.device.split(":")[0] == "cpu"
        return "onnx" if on_cpu and onnx_ready(self.model_path, self.quantize) else "torch"

    def _load(self) -> None:
        backend = self.resolved_backend
        threads = self.num_threads or default_threads()
        path = Path(self.model_path).expanduser()
        where = (str(path.resolve()), directory_stamp(path)) if path.is_dir() else (str(path),)
        key = (*where, backend, self.quantize, self.device, threads, self.max_length)
        loaded = MODELS.get(key, lambda: self._load_backend(backend, threads))
        if self.cache_size:
            self._cache = LRUCache(self.cache_size)
            self._cache_key = text_normaliser(loaded.tokenizer)
        self._loaded = loaded
        logger.debug(
            "classifier %s ready (%s backend, %d threads)", self.model_path, backend, threads
        )

    def _load_backend(self, backend: str, threads: int) -> LoadedModel:
        model: Any
        tokenizer: BatchTokenizer
        if backend == "onnx":
            model, tokenizer = load_onnx(self.model_path, self.quantize, threads, self.max_length)
            run = model
        else:
            model, tokenizer = self._load_torch(threads)
            run = self._torch_runner(model)
        labels = _labels(model.config)
        if all(_DEFAULT_LABEL.match(label) for label in labels):
            msg = f"{self.model_path!r}: config.json has no id2label naming the domains"
            raise ValueError(msg)
        warm_up(run, tokenizer)
        logger.debug("loaded %s (%d labels, %s backend)", self.model_path, len(labels), backend)
        return LoadedModel(model=model, tokenizer=tokenizer, backend=backend)

    def _load_torch(self, threads: int) -> tuple[PreTrainedModel, BatchTokenizer]:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        import langchain_domain_router.modeling  # noqa: F401  (registers the project's model type)

        try:
            with quiet_model_loading():
                hf_tokenizer = AutoTokenizer.from_pretrained(self.model_path)
                model = AutoModelForSequenceClassification.from_pretrained(self.model_path)
        except (OSError, ValueError) as exc:
            msg = f"could not load a sequence-classification model from {self.model_path!r}: {exc}"
            raise ValueError(msg) from exc
        backend_tokenizer = getattr(hf_tokenizer, "backend_tokenizer", None)
        if backend_tokenizer is None:
            msg = f"{self.model_path!r} has no fast tokenizer (tokenizer.json)"
            raise ValueError(msg)
        if torch.device(self.device).type == "cpu" and model.dtype != torch.float32:
            # Weights may be saved in float16 to halve the file; CPUs compute float16
            # slowly, so compute in float32.
            model = model.float()
        model.to(self.device).eval()
        if self.quantize == "int8":
            model = quantize(model, self.quantize, self.device)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
            logger.info("torch.set_num_threads(%d) for %s", threads, self.model_path)
        pad_id = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else 0
        tokenizer = BatchTokenizer(
            backend_tokenizer,
            pad_id=pad_id,
            input_names=hf_tokenizer.model_input_names,
            max_length=token_cap(self.max_length, model.config),
            char_cap=char_cap(model.config),
        )
        return model, tokenizer

    def _torch_runner(self, model: Any) -> Callable[[dict[str, Any]], np.ndarray]:
        import torch

        device = self.device

        def run(encoded: dict[str, Any]) -> np.ndarray:
            tensors = {key: torch.from_numpy(value).to(device) for key, value in encoded.items()}
            with torch.inference_mode():
                return model(**tensors).logits.float().cpu().numpy()

        return run

    @property
    def _shared(self) -> LoadedModel:
        loaded = self.load()._loaded
        if loaded is None:  # pragma: no cover - load() sets it or raises
            msg = "the model did not load"
            raise RuntimeError(msg)
        return loaded

    @property
    def model(self) -> Any:
        """The loaded model: a ``transformers`` model, or an ONNX Runtime session wrapper."""
        return self._shared.model

    @property
    def tokenizer(self) -> BatchTokenizer:
        """The loaded tokenizer (``backend_tokenizer`` is the ``tokenizers.Tokenizer``)."""
        return self._shared.tokenizer

    @property
    def config(self) -> Any:
        """The model's config (``id2label``, ``problem_type``, ``domain_router``)."""
        return self.model.config

    @property
    def router_settings(self) -> dict[str, Any]:
        """The ``domain_router`` block of the model's config (temperature, thresholds)."""
        return dict(getattr(self.config, "domain_router", None) or {})

    @property
    def labels(self) -> list[str]:
        """The labels in the model's ``id2label`` order."""
        return _labels(self.config)

    @property
    def model_version(self) -> str:
        """The model's version string (its config's ``model_version``, else its path)."""
        return str(self.router_settings.get("model_version") or self.model_path)

    @property
    def temperature(self) -> float:
        """The temperature fitted on validation data (1.0 when the model has none)."""
        return float(self.router_settings.get("temperature", 1.0))

    # -- preprocess -> _forward -> postprocess -------------------------------------

    def preprocess(self, texts: Sequence[str]) -> dict[str, Any]:
        """Tokenize ``texts`` into one padded batch.

        Torch tensors on the model's device for the torch backend, numpy arrays for ONNX.
        """
        encoded = self.tokenizer.encode([text[: self.max_chars] for text in texts])
        if self._shared.backend == "onnx":
            return encoded
        import torch

        return {key: torch.from_numpy(value).to(self.device) for key, value in encoded.items()}

    def _forward(self, encoded: dict[str, Any]) -> np.ndarray:
        shared = self._shared
        if isinstance(shared.model, OnnxModel):
            with shared.forward_lock:
                return shared.model(encoded)
        import torch

        with shared.forward_lock, torch.inference_mode():
            return shared.model(**encoded).logits.float().cpu().numpy()

    def scores(self, logits: np.ndarray | torch.Tensor) -> np.ndarray:
        """Turn logits into probabilities, following the model's ``problem_type``."""
        import numpy as np

        scaled = np.asarray(logits, dtype=np.float64) / self.temperature
        if self.config.problem_type == "multi_label_classification":
            return 1.0 / (1.0 + np.exp(-scaled))
        exp = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        return exp / exp.sum(axis=-1, keepdims=True)

    def postprocess(self, logits: np.ndarray | torch.Tensor) -> list[DomainPrediction]:
        """Turn a batch of logits into sorted predictions."""
        import numpy as np

        probs = self.scores(logits)
        labels, version = self.labels, self.model_version
        k = min(self.top_k, len(labels))
        top_ids = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
        top_scores = np.take_along_axis(probs, top_ids, axis=-1)
        member = _membership(tuple(labels))
        if self.config.problem_type == "multi_label_classification":
            masses = (probs[:, :, None] * member[None]).max(axis=1)
        else:
            masses = probs @ member
        predictions = []
        for mass, scores, ids in zip(
            masses.tolist(), top_scores.tolist(), top_ids.tolist(), strict=True
        ):
            top = [LabelScore(label=labels[i], score=s) for i, s in zip(ids, scores, strict=True)]
            predictions.append(
                DomainPrediction(
                    label=top[0].label,
                    score=top[0].score,
                    top_k=top,
                    supercategory=supercategory_of(top[0].label),
                    supercategory_scores=dict(zip(SUPERCATEGORIES, mass, strict=True)),
                    model_version=version,
                )
            )
        return predictions

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        """Return raw logits (no temperature) for ``texts``, one forward pass per chunk.

        Args:
            texts: Question texts.

        Returns:
            An array of shape ``(len(texts), num_labels)``.
        """
        import numpy as np

        rows = by_length_chunks(
            texts, self.batch_size, lambda chunk: list(self._forward(self.preprocess(chunk)))
        )
        return np.stack(rows) if rows else np.zeros((0, len(self.labels)))

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

    def _classify_one(self, value: RouterInput) -> DomainPrediction:
        text = extract_question(value, context_turns=self.context_turns)
        return self.classify_texts([text])[0]

    def classify(self, value: RouterInput) -> DomainPrediction:
        """Classify one input like ``invoke``, without the Runnable callback layer.

        Nothing is traced; the routing graph uses this when no callback handler listens.

        Args:
            value: What ``invoke`` accepts.

        Returns:
            The prediction.
        """
        return self._classify_one(value)

    async def aclassify(self, value: RouterInput) -> DomainPrediction:
        """Classify one input like ``ainvoke`` (coalesced when on), without callbacks.

        Args:
            value: What ``ainvoke`` accepts.

        Returns:
            The prediction.
        """
        if self.coalesce_ms is None:
            return await run_in_executor(None, self._classify_one, value)
        return await self._aclassify_coalesced(value)

    # -- Runnable interface ----------------------------------------------------------

    @override
    def invoke(
        self, input: RouterInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> DomainPrediction:
        check_config(config)
        return self._call_with_config(self._classify_one, input, config, run_type="chain")

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
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[DomainPrediction]:
        inputs = check_batch(inputs, config)
        if not inputs:
            return []
        first = config[0] if isinstance(config, list) and config else config
        return await run_in_executor(
            cast("RunnableConfig | None", first),
            self.batch,
            inputs,
            config,
            return_exceptions=return_exceptions,
        )

"""The classifier's options, declared once, and the calibration a checkpoint carries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from langchain_domain_router.schema import CALIBRATION_KEY

Precision = Literal["float32", "int8", "int4"]
"""Which exported graph runs: full precision, dynamically int8-quantised, or 4-bit weights."""
BackendName = Literal["auto", "torch", "onnx"]
"""Which runtime runs the model (``"auto"`` decides at load)."""


class ClassifierOptions(BaseModel):
    """How a classifier runs: the options ``DomainClassifier`` and a router config share.

    Example:
        ```python
        ClassifierOptions(batch_size=64, cache_size=10_000, context_turns=1)
        ```
    """

    model_config = ConfigDict(extra="forbid")

    device: str = "cpu"
    """The torch device to run on."""
    max_length: int | None = Field(default=None, gt=0)
    """Token cap per question; ``None`` takes the model's calibrated cap (or 128)."""
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
    ``None`` runs each call on its own in an executor thread (the server's
    ``ServerSettings.coalesce_ms`` applies when a router config leaves it ``None``)."""
    cache_size: int = Field(default=0, ge=0)
    """Predictions kept in an LRU cache keyed on the normalised question; 0 turns it off."""
    num_threads: int | None = Field(default=None, gt=0)
    """Intra-op threads of the forward pass; ``None``: half the cores this process may use
    (affinity and cgroup quota), 1 to 4. Torch's setting is process-wide
    (``torch.set_num_threads``); ONNX Runtime's is the session's."""
    quantize: Precision | None = None
    """``"int8"``: the int8 graph (ONNX) or dynamic int8 linear layers (torch, CPU only);
    ``"int4"``: the graph of 4-bit weight blocks (ONNX only); ``"float32"``: full
    precision; ``None``: the graph the ONNX export chose (a quantised one only where it
    was measured within 0.5 accuracy points), full precision on torch."""
    backend: BackendName = "auto"
    """``"onnx"`` runs the graph ``domain-router export-onnx`` wrote with ONNX Runtime,
    without importing torch; ``"torch"`` the saved weights; ``"auto"`` ONNX when the
    model has an export and onnxruntime is installed (on the CPU), else torch."""


class ClassifierSettings(ClassifierOptions):
    """Which classifier a router loads, and how (``RouterConfig.classifier``).

    Build the classifier with ``DomainClassifier.from_settings(settings)``.

    Example:
        ```python
        ClassifierSettings(model="default", context_turns=1, top_k=3)
        ```
    """

    model: str = "default"
    """``"default"`` for the embedded model, a local directory, or a hub id."""


class Calibration(BaseModel):
    """The routing block of a checkpoint: ``CALIBRATION_KEY`` in its ``config.json``.

    Training fits it on validation data and writes it; every backend reads it. A
    checkpoint without one gets these defaults.

    Example:
        ```python
        Calibration(temperature=2.55, confidence_slope=0.5, min_confidence=0.3, model_version="r4")
        ```
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    temperature: float = Field(default=1.0, gt=0)
    """Logits are divided by it before the softmax (fitted on validation NLL)."""
    label_bias: dict[str, float] = Field(default_factory=dict)
    """Added to each label's temperature-scaled logit: ``-tau * log`` of the label's share
    of the training rows (``tau`` picked on validation accuracy), so that a label is not
    favoured just because training saw it often. Empty: no bias."""
    confidence_slope: float = Field(default=1.0, gt=0)
    """The confidence map's slope: the top class's log-odds against the rest are scaled by
    it (with ``confidence_bias``, a logistic fit of being right on validation questions)."""
    confidence_bias: float = 0.0
    """The confidence map's bias, added to the scaled log-odds."""
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    """Below this top-1 probability a question falls back (unless the router sets one)."""
    min_margin: float = Field(default=0.0, ge=0, le=1)
    """Below this top-1 minus top-2 probability a question falls back."""
    max_length: int = Field(default=128, gt=0)
    """The token cap the model was trained and calibrated with."""
    model_version: str | None = None
    """The model's version string, recorded in every routing decision."""

    def bias_vector(self, labels: Sequence[str]) -> list[float] | None:
        """Return ``label_bias`` in ``labels`` order (0 for a label it lacks); None if empty."""
        if not self.label_bias:
            return None
        return [self.label_bias.get(label, 0.0) for label in labels]

    @classmethod
    def of(cls, config: Any) -> Calibration:
        """Read the block from a model config (``transformers`` or a plain ``config.json``).

        Args:
            config: An object with a ``domain_router`` attribute, or a ``config.json`` dict.

        Returns:
            The calibration; the defaults where the block or a key is absent.
        """
        if isinstance(config, dict):
            block = config.get(CALIBRATION_KEY)
        else:
            block = getattr(config, CALIBRATION_KEY, None)
        return cls.model_validate(block or {})

    def write(self, config: Any) -> None:
        """Store the block on a model config (``transformers`` or a ``config.json`` dict)."""
        block = self.model_dump(mode="json", exclude_none=True)
        if isinstance(config, dict):
            config[CALIBRATION_KEY] = block
        else:
            setattr(config, CALIBRATION_KEY, block)

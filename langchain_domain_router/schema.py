"""Pydantic types shared by the classifier, the graph and the router."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from langchain_domain_router._taxonomy import Supercategory

RoutingReason = Literal[
    "confident",
    "low_confidence",
    "low_margin",
    "unmapped_domain",
    "expert_error",
    "sticky",
    "fan_out",
]
"""Why a question went where it went."""


class LabelScore(BaseModel):
    """One label and its probability.

    Example:
        ```python
        LabelScore(label="Math", score=0.91)
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    """A label from the model's ``config.id2label``."""
    score: float
    """Its probability after temperature scaling."""


class DomainPrediction(BaseModel):
    """The classifier's answer for one question.

    Example:
        ```python
        prediction = DomainClassifier.default().invoke("미분계수의 정의를 설명해 주세요")
        prediction.label, prediction.score, prediction.supercategory
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    """The most probable domain."""
    score: float
    """Its probability."""
    top_k: list[LabelScore]
    """The most probable domains, best first."""
    supercategory: Supercategory | None
    """The KMMLU supercategory of ``label`` (``None`` for a label outside KMMLU)."""
    supercategory_scores: dict[str, float] = Field(default_factory=dict)
    """Probability mass per KMMLU supercategory, summed over its domains."""
    model_version: str
    """Which model made the prediction."""

    @property
    def margin(self) -> float:
        """Top-1 minus top-2 probability (the top-1 score when there is one label)."""
        second = self.top_k[1].score if len(self.top_k) > 1 else 0.0
        return self.score - second


class RoutingDecision(BaseModel):
    """The audit record of one routing decision: where a question went, and why.

    Example:
        ```python
        answer = router.invoke("근저당권 설정 등기는 어떻게 하나요?")
        decision = RoutingDecision.model_validate(answer.response_metadata["routing"])
        decision.expert, decision.reason, decision.estimated_cost_usd
        ```
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    """A fresh id for this request, for audit logs and feedback."""
    domain: str
    """The domain routed on: the classifier's top domain (the previous turn's domain
    when ``reason`` is ``sticky``)."""
    score: float
    """Its probability."""
    margin: float
    """Top-1 minus top-2 probability."""
    top_k: list[LabelScore]
    """The classifier's top domains."""
    supercategory: Supercategory | None
    """The top domain's supercategory."""
    expert: str
    """The node that answered (an expert's name, ``general``, or ``merge`` for a fan-out)."""
    fan_out: list[str] = Field(default_factory=list)
    """The experts that both answered, when ``reason`` is ``fan_out``."""
    reason: RoutingReason
    """Why the question went to ``expert``."""
    explanation: str
    """The reason in words."""
    model: str | None = None
    """The chat model that answered."""
    offline: bool = False
    """True when no model was reachable and the offline expert answered."""
    failed_expert: str | None = None
    """The expert that raised or timed out, when ``reason`` is ``expert_error``."""
    error: str | None = None
    """What went wrong with ``failed_expert``."""
    classifier_latency_ms: float
    """Time spent classifying."""
    expert_latency_ms: float | None = None
    """Time spent in the answering expert, retries included."""
    input_tokens: int | None = None
    """Prompt tokens reported by the expert model."""
    output_tokens: int | None = None
    """Completion tokens reported by the expert model."""
    estimated_cost_usd: float | None = None
    """Token usage priced with the expert's profile."""
    model_version: str
    """The classifier model's version."""
    min_confidence: float
    """The confidence threshold in force."""
    min_margin: float
    """The margin threshold in force."""

"""Expert profiles: which chat model answers which domains, at what price and quality."""

from __future__ import annotations

from typing import Any, Literal, Self

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MessagePolicy = Literal["last_human", "conversation", "all"]
"""Which messages of the conversation an expert sees (``ExpertProfile.message_policy``)."""


def _model_name(model: str | BaseChatModel) -> str:
    if isinstance(model, str):
        return model
    return str(getattr(model, "model_name", None) or type(model).__name__)


class CandidateModel(BaseModel):
    """One model an expert may answer with, its price and its measured quality.

    Example:
        ```python
        CandidateModel(
            model="openai:gpt-4o-mini",
            input_cost_per_1m=0.15,
            output_cost_per_1m=0.60,
            quality={"Law": 0.52, "Criminal-Law": 0.48},
        )
        ```
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    model: str | BaseChatModel
    """A ``provider:model`` string for ``init_chat_model``, or a chat-model instance."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra ``init_chat_model`` arguments."""
    input_cost_per_1m: float = Field(default=0.0, ge=0)
    """USD per million input tokens."""
    output_cost_per_1m: float = Field(default=0.0, ge=0)
    """USD per million output tokens."""
    quality: dict[str, float] = Field(default_factory=dict)
    """Accuracy per domain of the classifier's taxonomy (0-1), e.g. measured with
    ``measure_quality``; ``RouterConfig`` checks the names against the model's domains."""

    @field_validator("quality")
    @classmethod
    def _quality_between_0_and_1(cls, quality: dict[str, float]) -> dict[str, float]:
        for domain, value in quality.items():
            if not 0.0 <= value <= 1.0:
                msg = f"quality of {domain!r} must be between 0 and 1, got {value}"
                raise ValueError(msg)
        return quality

    @property
    def model_name(self) -> str:
        """A readable name of the model."""
        return _model_name(self.model)

    @property
    def blended_cost_per_1m(self) -> float:
        """Input plus output price per million tokens: the number candidates compete on."""
        return self.input_cost_per_1m + self.output_cost_per_1m

    def estimate_cost(self, input_tokens: int, output_tokens: int) -> float:
        """Price token usage with this candidate's rates, in USD."""
        return (
            input_tokens * self.input_cost_per_1m + output_tokens * self.output_cost_per_1m
        ) / 1e6


class ExpertProfile(BaseModel):
    """One expert chat model: what it covers, what it costs, and how to call it.

    Example:
        ```python
        from langchain_domain_router import ExpertProfile

        law = ExpertProfile(
            name="law",
            model="openai:gpt-4o-mini",
            domains=["Law", "Criminal-Law", "Patent"],
            system_prompt="당신은 한국 법률 전문가입니다.",
            input_cost_per_1m=0.15,
            output_cost_per_1m=0.60,
        )
        ```
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", max_length=64)
    """The expert's node name in the graph."""
    model: str | BaseChatModel = "offline"
    """A ``provider:model`` string for ``init_chat_model``, a chat-model instance, or
    ``"offline"`` for the offline expert that explains the routing instead of answering."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra ``init_chat_model`` arguments, e.g. ``base_url`` or ``temperature``."""
    domains: list[str] = Field(default_factory=list)
    """Domains this expert answers, spelled as the classifier model's ``id2label`` spells
    them (KMMLU subjects for the default model); ``RouterConfig`` checks them."""
    supercategories: list[str] = Field(default_factory=list)
    """Groups of the model's taxonomy this expert answers, for domains no expert names
    (KMMLU supercategories for the default model: ``STEM``, ``Applied Science``,
    ``HUMSS``, ``Other``)."""
    system_prompt: str | None = None
    """The expert's instructions: the first part of the one system message it receives."""
    message_policy: MessagePolicy = "conversation"
    """Which messages of the conversation the expert sees: ``"last_human"`` only the
    question; ``"conversation"`` the human turns and the AI answers, without tool calls
    and tool results; ``"all"`` every message. System messages in the conversation are
    merged after ``system_prompt`` into one system message at the start (dropped under
    ``"last_human"``), since some providers reject a second system message."""
    input_cost_per_1m: float = Field(default=0.0, ge=0)
    """USD per million input tokens."""
    output_cost_per_1m: float = Field(default=0.0, ge=0)
    """USD per million output tokens."""
    timeout_s: float = Field(default=60.0, gt=0)
    """Seconds one call may take before it counts as failed."""
    max_retries: int = Field(default=1, ge=0, le=10)
    """Retries after a failed or timed-out call, before the fallback answers."""
    priority: int = 0
    """Tie-break when two experts claim the same domain or supercategory: higher wins."""
    tags: list[str] = Field(default_factory=list)
    """Free-form labels, e.g. ``["cheap", "korean"]``."""
    candidates: list[CandidateModel] = Field(default_factory=list)
    """Several models to choose from per question (cost-aware routing); when empty, the
    expert always answers with ``model`` at the profile's prices."""
    selection: Literal["cheapest_above_floor", "best_under_budget"] = "cheapest_above_floor"
    """How a candidate is chosen: the cheapest whose quality on the domain reaches
    ``quality_floor``, or the best quality whose blended price fits ``budget_per_1m``."""
    quality_floor: float = Field(default=0.0, ge=0, le=1)
    """Minimum quality on the question's domain for ``cheapest_above_floor``."""
    budget_per_1m: float | None = Field(default=None, ge=0)
    """Maximum input+output USD per million tokens for ``best_under_budget``."""

    @model_validator(mode="after")
    def _budget_when_needed(self) -> Self:
        if self.selection == "best_under_budget" and self.budget_per_1m is None:
            msg = "budget_per_1m is required when selection is 'best_under_budget'"
            raise ValueError(msg)
        return self

    def options(self) -> list[CandidateModel]:
        """The models this expert chooses from (the profile's own model when none listed)."""
        if self.candidates:
            return self.candidates
        return [
            CandidateModel(
                model=self.model,
                model_kwargs=self.model_kwargs,
                input_cost_per_1m=self.input_cost_per_1m,
                output_cost_per_1m=self.output_cost_per_1m,
            )
        ]

    @property
    def model_name(self) -> str:
        """A readable name of the configured model (``options()[0]``'s, without building it)."""
        return self.candidates[0].model_name if self.candidates else _model_name(self.model)

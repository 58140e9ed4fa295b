"""Types and names shared by the classifier, the graph, the router and the server."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Final, Literal, TypedDict, cast

from langchain_core.messages import AIMessage, AnyMessage
from pydantic import BaseModel, ConfigDict, Field

ROUTER_NAME: Final = "domain_router"
"""The name the router goes by: the compiled graph's, the agent tool's and the LangGraph
Platform graph id."""
CALIBRATION_KEY: Final = "domain_router"
"""The key of the routing block (calibration, taxonomy) in a saved model's ``config.json``.

Part of the file format, not a name: every saved model keeps its block under this key, so
it stays as it is whatever the router or its graph is called."""

BuiltinNode = Literal["classify", "general", "merge"]
"""The graph's nodes besides the configured experts."""
CLASSIFY_NODE: Final = "classify"
"""The node name of the classifier."""
GENERAL_NODE: Final = "general"
"""The node name of the fallback expert."""
MERGE_NODE: Final = "merge"
"""The node that merges the answers of a top-2 fan-out."""

ROUTING_EVENT: Final = "routing_decision"
"""Custom stream event sent when ``classify`` has chosen the expert."""
ROUTING_COMPLETE_EVENT: Final = "routing_complete"
"""Custom stream event sent with the final record (latencies, usage, cost) after the
answer; audit sinks listen for it."""
EXPERT_OPTIONS: Final = "expert_options"
"""``configurable`` key of a run's call options for the answering expert's chat model
(``temperature``, ``max_tokens``, ``stop``, ``tools``, ...), passed as keyword arguments."""
RoutingEvent = Literal["routing_decision", "routing_complete"]
"""The custom stream events the graph sends."""


RoutingReason = Literal[
    "confident",
    "low_confidence",
    "low_margin",
    "unmapped_domain",
    "expert_error",
    "sticky",
    "fan_out",
    "pinned",
]
"""Why a question went where it went."""
REASON_FAN_OUT: Final[RoutingReason] = "fan_out"
"""Two close top domains: their experts both answer and ``merge`` joins the answers."""
REASON_EXPERT_ERROR: Final[RoutingReason] = "expert_error"
"""The answering expert failed: ``general`` answers instead."""


class LabelScoreRecord(TypedDict):
    """``LabelScore`` as a JSON-ready dict."""

    label: str
    score: float


class RoutingRecord(TypedDict):
    """``RoutingDecision`` as the JSON-ready dict the graph state and answers carry.

    ``RoutingDecision.model_validate(record)`` rebuilds the model; the fields are the
    model's (see ``RoutingDecision`` for what each means).
    """

    request_id: str
    domain: str
    score: float
    margin: float
    top_k: list[LabelScoreRecord]
    supercategory: str | None
    expert: str
    fan_out: list[str]
    reason: RoutingReason
    explanation: str
    model: str | None
    offline: bool
    failed_expert: str | None
    error: str | None
    classifier_latency_ms: float
    expert_latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    estimated_cost_usd: float | None
    model_version: str
    min_confidence: float
    min_margin: float


class FanOutAnswer(TypedDict, total=False):
    """One fan-out expert's outcome: its ``message``, or the ``error`` it failed with."""

    expert: str
    message: AIMessage
    error: str


def _collect(left: list[FanOutAnswer] | None, right: list[FanOutAnswer] | None) -> list:
    """Reducer for fan-out answers: ``None`` clears them at the start of each turn."""
    return [] if right is None else [*(left or []), *right]


def add_messages(left: Any, right: Any) -> Any:
    """LangGraph's ``add_messages`` reducer, imported on first use.

    The classifier and its types never need LangGraph, whose import is most of a
    fresh process's start-up time.
    """
    from langgraph.graph.message import add_messages as reduce

    return reduce(left, right)


class RouterInputState(TypedDict, total=False):
    """What the graph takes: a conversation ending in a human turn, or a ``question``."""

    messages: Annotated[list[AnyMessage], add_messages]
    question: str
    pinned_expert: str | None
    """An expert (or ``general``) to answer this turn without classifying it (reason
    ``pinned``); ``classify`` consumes it, so a thread's next turn is routed again."""


class RouterState(RouterInputState, total=False):
    """The routing graph's state.

    ``question`` is the text the classifier read (with ``context_turns`` earlier human
    turns). ``prediction`` and ``routing`` hold ``DomainPrediction`` /
    ``RoutingDecision`` as JSON-ready dicts so any checkpointer can store them; rebuild
    the objects with ``RoutingDecision.model_validate(state["routing"])``.
    """

    prediction: dict[str, Any] | None
    routing: RoutingRecord | None
    answer: str | None
    fan_out_answers: Annotated[list[FanOutAnswer], _collect]


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
    supercategory: str | None
    """The group of ``label`` in the model's taxonomy (its KMMLU supercategory for the
    default model; ``None`` for a label without a group)."""
    supercategory_scores: dict[str, float] = Field(default_factory=dict)
    """Probability mass per group of the model's taxonomy, summed over its domains."""
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
    supercategory: str | None
    """The top domain's group (KMMLU supercategory for the default model)."""
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


def routing_record(decision: RoutingDecision) -> RoutingRecord:
    """The decision as the record the graph state carries (dumped once, at ``classify``)."""
    return cast("RoutingRecord", decision.model_dump(mode="json"))

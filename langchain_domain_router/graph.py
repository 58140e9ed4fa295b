"""The routing graph: ``classify`` -> one domain expert or ``general`` -> END."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph

from langchain_domain_router.classifier import DomainClassifier
from langchain_domain_router.config import (
    CLASSIFY_NODE,
    GENERAL_NODE,
    ClassifierSettings,
    ExpertProfile,
    RouterConfig,
)
from langchain_domain_router.experts import (
    ExpertCallError,
    OfflineExpert,
    acall_expert,
    call_expert,
    elapsed_ms,
    resolve_chat_model,
)
from langchain_domain_router.policy import Thresholds, decide, resolve_thresholds
from langchain_domain_router.schema import DomainPrediction, RoutingDecision

logger = logging.getLogger(__name__)

ROUTING_EVENT = "routing_decision"
"""Custom stream event sent when ``classify`` has chosen the expert."""
ROUTING_COMPLETE_EVENT = "routing_complete"
"""Custom stream event sent with the final record (latencies, usage, cost) after the
answer; audit sinks listen for it."""


def _emit(name: str, routing: dict[str, Any], config: RunnableConfig) -> None:
    get_stream_writer()({"event": name, "routing": routing})
    dispatch_custom_event(name, routing, config=config)


async def _aemit(name: str, routing: dict[str, Any], config: RunnableConfig) -> None:
    get_stream_writer()({"event": name, "routing": routing})
    await adispatch_custom_event(name, routing, config=config)


class RouterInputState(TypedDict, total=False):
    """What the graph takes: a conversation ending in a human turn, or a ``question``."""

    messages: Annotated[list[AnyMessage], add_messages]
    question: str


class RouterState(RouterInputState, total=False):
    """The routing graph's state.

    ``prediction`` and ``routing`` hold ``DomainPrediction`` / ``RoutingDecision`` as
    JSON-ready dicts so any checkpointer can store them; rebuild the objects with
    ``RoutingDecision.model_validate(state["routing"])``.
    """

    prediction: dict[str, Any] | None
    routing: dict[str, Any] | None
    answer: str | None


def classifier_from_settings(settings: ClassifierSettings) -> DomainClassifier:
    """Create the classifier a configuration names."""
    options: dict[str, Any] = {
        "device": settings.device,
        "max_length": settings.max_length,
        "batch_size": settings.batch_size,
        "context_turns": settings.context_turns,
    }
    if settings.model == "default":
        return DomainClassifier.default(**options)
    return DomainClassifier.from_pretrained(settings.model, **options)


def _conversation(state: RouterState) -> tuple[list[BaseMessage], list[BaseMessage]]:
    """Return the conversation ending in the question, and the messages to add to state.

    The question is the last message when that is a human turn; otherwise ``question``
    is appended as a new human turn.
    """
    messages: list[BaseMessage] = list(state.get("messages") or [])
    if messages and isinstance(messages[-1], HumanMessage):
        return messages, []
    question = state.get("question")
    if not isinstance(question, str) or not question.strip():
        msg = "the router needs a question: pass 'question' or end 'messages' with a human turn"
        raise ValueError(msg)
    new: list[BaseMessage] = [HumanMessage(content=question)]
    return messages + new, new


class _ClassifyNode:
    def __init__(
        self, classifier: DomainClassifier, config: RouterConfig, thresholds: Thresholds
    ) -> None:
        self.classifier = classifier
        self.config = config
        self.thresholds = thresholds

    def _update(
        self,
        prediction: DomainPrediction,
        start: float,
        conversation: list[BaseMessage],
        new: list[BaseMessage],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        decision = decide(
            prediction, self.config, self.thresholds, classifier_latency_ms=elapsed_ms(start)
        )
        routing = decision.model_dump(mode="json")
        update = {
            "messages": new,
            "question": str(conversation[-1].text),
            "prediction": prediction.model_dump(mode="json"),
            "routing": routing,
            "answer": None,
        }
        return update, routing

    def invoke(self, state: RouterState, config: RunnableConfig) -> dict[str, Any]:
        conversation, new = _conversation(state)
        start = time.perf_counter()
        prediction = self.classifier.invoke(conversation, config)
        update, routing = self._update(prediction, start, conversation, new)
        _emit(ROUTING_EVENT, routing, config)
        return update

    async def ainvoke(self, state: RouterState, config: RunnableConfig) -> dict[str, Any]:
        conversation, new = _conversation(state)
        start = time.perf_counter()
        prediction = await self.classifier.ainvoke(conversation, config)
        update, routing = self._update(prediction, start, conversation, new)
        await _aemit(ROUTING_EVENT, routing, config)
        return update


class _ExpertNode:
    """Runs one expert; the ``general`` node never fails (it degrades to offline)."""

    def __init__(self, profile: ExpertProfile, node: str) -> None:
        self.profile = profile
        self.node = node
        self.model, self.unavailable = resolve_chat_model(profile)

    def _prepare(self, state: RouterState) -> tuple[RoutingDecision, list[BaseMessage], Any]:
        decision = RoutingDecision.model_validate(state["routing"])
        prompt: list[BaseMessage] = list(state.get("messages") or [])
        if self.profile.system_prompt:
            prompt = [SystemMessage(content=self.profile.system_prompt), *prompt]
        model = self.model or self._offline(decision, self.unavailable)
        return decision, prompt, model

    def _offline(self, decision: RoutingDecision, unavailable: str | None) -> OfflineExpert:
        return OfflineExpert(
            expert=self.node,
            target_model=self.profile.model_name,
            reason=decision.explanation,
            unavailable=unavailable,
        )

    def _answered(
        self, decision: RoutingDecision, reply: BaseMessage, start: float, offline: bool
    ) -> dict[str, Any]:
        usage = getattr(reply, "usage_metadata", None) or {}
        tokens_in, tokens_out = usage.get("input_tokens"), usage.get("output_tokens")
        cost = (
            self.profile.estimate_cost(tokens_in or 0, tokens_out or 0)
            if usage
            else (0.0 if offline else None)
        )
        decision = decision.model_copy(
            update={
                "expert": self.node,
                "model": self.profile.model_name,
                "offline": offline,
                "expert_latency_ms": elapsed_ms(start),
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "estimated_cost_usd": cost,
            }
        )
        routing = decision.model_dump(mode="json")
        message = AIMessage(
            content=reply.content,
            id=reply.id,
            name=self.node,
            response_metadata={**reply.response_metadata, "routing": routing},
            usage_metadata=getattr(reply, "usage_metadata", None),
        )
        return {"messages": [message], "answer": str(message.text), "routing": routing}

    def _failed(
        self, decision: RoutingDecision, error: ExpertCallError
    ) -> tuple[RoutingDecision, dict[str, Any] | None]:
        failed = decision.model_copy(
            update={
                "reason": "expert_error",
                "failed_expert": self.node,
                "error": str(error),
                "explanation": f"{decision.explanation}; expert {self.node!r} failed "
                f"({error}), so the general expert answers",
            }
        )
        if self.node == GENERAL_NODE:
            return failed, None
        return failed, {"routing": failed.model_dump(mode="json")}

    def invoke(self, state: RouterState, config: RunnableConfig) -> dict[str, Any]:
        decision, prompt, model = self._prepare(state)
        start = time.perf_counter()
        try:
            reply = call_expert(model, self.profile, prompt, config)
        except ExpertCallError as exc:
            decision, update = self._failed(decision, exc)
            if update is not None:
                return update
            model = self._offline(decision, str(exc))
            reply = model.invoke(prompt, config)
        update = self._answered(decision, reply, start, isinstance(model, OfflineExpert))
        _emit(ROUTING_COMPLETE_EVENT, update["routing"], config)
        return update

    async def ainvoke(self, state: RouterState, config: RunnableConfig) -> dict[str, Any]:
        decision, prompt, model = self._prepare(state)
        start = time.perf_counter()
        try:
            reply = await acall_expert(model, self.profile, prompt, config)
        except ExpertCallError as exc:
            decision, update = self._failed(decision, exc)
            if update is not None:
                return update
            model = self._offline(decision, str(exc))
            reply = await model.ainvoke(prompt, config)
        update = self._answered(decision, reply, start, isinstance(model, OfflineExpert))
        await _aemit(ROUTING_COMPLETE_EVENT, update["routing"], config)
        return update


def _after_expert(state: RouterState) -> Literal["general", "__end__"]:
    routing = state.get("routing") or {}
    return "general" if routing.get("reason") == "expert_error" else "__end__"


def build_router_graph(
    config: RouterConfig | str | Path,
    *,
    classifier: DomainClassifier | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    name: str = "domain_router",
) -> CompiledStateGraph:
    """Build the routing graph: ``classify`` -> a domain expert or ``general`` -> END.

    Conditional edges after ``classify`` send the state to the expert the routing
    rules pick (see ``policy.decide``); an expert that fails after its retries hands the
    question to ``general``. The graph works alone, as a subgraph of any graph with a
    ``messages`` key, and with a checkpointer for multi-turn threads.

    Args:
        config: The router configuration, or a path to a YAML/TOML/JSON file.
        classifier: The classifier; by default the one ``config.classifier`` names.
        checkpointer: Optional checkpointer for multi-turn conversations.
        name: The compiled graph's name.

    Returns:
        The compiled graph. Input: ``{"messages": [...]}`` or ``{"question": "..."}``.

    Example:
        ```python
        from langchain_domain_router import RouterConfig, build_router_graph

        graph = build_router_graph(RouterConfig.example())
        state = graph.invoke({"question": "부가가치세 신고는 언제 하나요?"})
        state["routing"]["expert"], state["answer"]
        ```
    """
    if not isinstance(config, RouterConfig):
        config = RouterConfig.from_file(config)
    classifier = classifier or classifier_from_settings(config.classifier)
    thresholds = resolve_thresholds(config, classifier.router_settings)
    classify = _ClassifyNode(classifier, config, thresholds)

    graph = StateGraph(RouterState, input_schema=RouterInputState)
    graph.add_node(CLASSIFY_NODE, RunnableLambda(classify.invoke, afunc=classify.ainvoke))
    nodes = [(expert.name, expert) for expert in config.experts]
    nodes.append((GENERAL_NODE, config.fallback))
    runners = [_ExpertNode(profile, node) for node, profile in nodes]
    for runner in runners:
        graph.add_node(
            runner.node, RunnableLambda(runner.invoke, afunc=runner.ainvoke, name=runner.node)
        )
    names = [node for node, _ in nodes]
    offline = {runner.node: runner.unavailable for runner in runners if runner.model is None}
    if offline:
        logger.warning("no model reachable for %s: the offline expert answers for them", offline)

    def route(state: RouterState) -> str:
        return str((state.get("routing") or {})["expert"])

    route.__annotations__["return"] = Literal[tuple(names)]  # type: ignore[valid-type]
    graph.add_edge(START, CLASSIFY_NODE)
    graph.add_conditional_edges(CLASSIFY_NODE, route, path_map=names)
    for node in names[:-1]:
        graph.add_conditional_edges(node, _after_expert, path_map=[GENERAL_NODE, END])
    graph.add_edge(GENERAL_NODE, END)
    return graph.compile(checkpointer=checkpointer, name=name)

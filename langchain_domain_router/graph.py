"""The routing graph: ``classify`` -> one domain expert or ``general`` -> END."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send
from typing_extensions import override

from langchain_domain_router._nodes import ClassifyNode, ExpertNode, merge_answers
from langchain_domain_router._quiet import offline_notice
from langchain_domain_router.classifier import DomainClassifier
from langchain_domain_router.config import RouterConfig
from langchain_domain_router.policy import resolve_thresholds
from langchain_domain_router.schema import (
    CLASSIFY_NODE,
    GENERAL_NODE,
    MERGE_NODE,
    ROUTER_NAME,
    RouterInputState,
    RouterState,
)

logger = logging.getLogger(__name__)


class _Edge(Runnable[RouterState, Any]):
    """A conditional edge's decision, made in place under ``invoke`` and ``ainvoke``.

    Given a plain function, LangGraph records a run for every decision and, under
    ``ainvoke``, runs it in a thread executor; reading a dict needs neither.
    """

    def __init__(self, decide: Callable[[RouterState], Any]) -> None:
        self.decide = decide
        self.name = decide.__name__

    @override
    def invoke(
        self, input: RouterState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        return self.decide(input)

    @override
    async def ainvoke(
        self, input: RouterState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        return self.decide(input)


def _route(state: RouterState) -> str | list[Send]:
    routing = state.get("routing") or {}
    if routing.get("reason") == "fan_out":
        return [Send(expert, state) for expert in routing["fan_out"]]
    return str(routing["expert"])


def _after_expert(state: RouterState) -> Literal["general", "merge", "__end__"]:
    reason = (state.get("routing") or {}).get("reason")
    if reason == "expert_error":
        return "general"
    return "merge" if reason == "fan_out" else "__end__"


def _after_merge(state: RouterState) -> Literal["general", "__end__"]:
    reason = (state.get("routing") or {}).get("reason")
    return "general" if reason == "expert_error" else "__end__"


def build_router_graph(
    config: RouterConfig | str | Path,
    *,
    classifier: DomainClassifier | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    name: str = ROUTER_NAME,
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
        state = graph.invoke({"question": "법인세 신고 기한은 언제인가요?"})
        state["routing"]["expert"], state["answer"]
        ```
    """
    config = RouterConfig.load(config)
    classifier = classifier or DomainClassifier.from_settings(config.classifier)
    thresholds = resolve_thresholds(config, classifier.calibration)
    classify = ClassifyNode(classifier, config, thresholds)
    experts = [ExpertNode(profile, profile.name) for profile in config.experts]
    general = ExpertNode(config.fallback, GENERAL_NODE)
    unreachable = []
    for node in [*experts, general]:
        for model, why in node.unavailable.items():
            logger.debug("%s (%s): %s", node.name, model, why)
            unreachable.append((node.name, model))
    notice = offline_notice(unreachable)
    if notice:
        logger.info(notice)

    graph = StateGraph(RouterState, input_schema=RouterInputState)
    graph.add_node(CLASSIFY_NODE, classify)
    for node in [*experts, general]:
        graph.add_node(node.name, node)
    names = [node.name for node in [*experts, general]]
    graph.add_edge(START, CLASSIFY_NODE)
    graph.add_conditional_edges(CLASSIFY_NODE, _Edge(_route), path_map=names)
    after_expert = [GENERAL_NODE, END]
    if config.fan_out.enabled:
        graph.add_node(MERGE_NODE, merge_answers)
        graph.add_conditional_edges(MERGE_NODE, _Edge(_after_merge), path_map=[GENERAL_NODE, END])
        after_expert.insert(1, MERGE_NODE)
    for node in experts:
        graph.add_conditional_edges(node.name, _Edge(_after_expert), path_map=after_expert)
    graph.add_edge(GENERAL_NODE, END)
    return graph.compile(checkpointer=checkpointer, name=name)

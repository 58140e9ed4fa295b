"""The routing graph: ``classify`` -> one domain expert or ``general`` -> END."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Send

from langchain_domain_router.classifier import DomainClassifier
from langchain_domain_router.config import RouterConfig
from langchain_domain_router.graph._expert_nodes import ExpertNode, merge_answers
from langchain_domain_router.graph._nodes import ClassifyNode
from langchain_domain_router.graph._offline_text import offline_notice
from langchain_domain_router.graph._wiring import CHOSEN, EXPERT, destinations, next_node
from langchain_domain_router.graph.policy import resolve_thresholds
from langchain_domain_router.schema import (
    CLASSIFY_NODE,
    GENERAL_NODE,
    MERGE_NODE,
    ROUTER_NAME,
    RouterInputState,
    RouterState,
    RoutingRecord,
    add_messages,
)

logger = logging.getLogger(__name__)


def _route(state: RouterState, update: dict[str, Any]) -> str | list[Send]:
    """After ``classify``: the chosen expert, or each fan-out expert with the new state."""
    routing: RoutingRecord = update["routing"]
    if next_node(CLASSIFY_NODE, routing["reason"]) == CHOSEN:
        return routing["expert"]
    messages = add_messages(state.get("messages") or [], update["messages"])
    fresh = {**state, **update, "messages": messages, "fan_out_answers": []}
    return [Send(expert, fresh) for expert in routing["fan_out"]]


def _after_expert(state: RouterState, update: dict[str, Any]) -> str:
    routing: RoutingRecord | None = update.get("routing") or state.get("routing")
    return next_node(EXPERT, routing["reason"] if routing else None)


def _merge(state: RouterState, config: RunnableConfig) -> Command:
    update = merge_answers(state, config)
    return Command(update=update, goto=next_node(MERGE_NODE, update["routing"]["reason"]))


def build_router_graph(
    config: RouterConfig | str | Path,
    *,
    classifier: DomainClassifier | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    name: str = ROUTER_NAME,
) -> CompiledStateGraph:
    """Build the routing graph: ``classify`` -> a domain expert or ``general`` -> END.

    After ``classify`` the graph goes to the expert the routing rules pick (see
    ``policy.decide``); an expert that fails after its retries hands the
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
    router_config = RouterConfig.load(config)
    classifier = classifier or DomainClassifier.from_settings(router_config.classifier)
    bound = router_config.bind(classifier.taxonomy)
    return wire_router_graph(bound, classifier, checkpointer=checkpointer, name=name)


def wire_router_graph(
    router_config: RouterConfig,
    classifier: DomainClassifier,
    *,
    checkpointer: BaseCheckpointSaver | None = None,
    name: str = ROUTER_NAME,
) -> CompiledStateGraph:
    """Compile the routing graph of a loaded configuration bound to the classifier's taxonomy.

    ``build_router_graph`` and ``DomainRouter.from_config`` load the configuration the
    caller handed in once, then wire the graph here.

    Args:
        router_config: The router configuration, bound to ``classifier.taxonomy``.
        classifier: The classifier.
        checkpointer: Optional checkpointer for multi-turn conversations.
        name: The compiled graph's name.

    Returns:
        The compiled graph.
    """
    thresholds = resolve_thresholds(router_config, classifier.calibration)
    classify = ClassifyNode(classifier, router_config, thresholds, goto=_route)
    experts = [ExpertNode(p, p.name, goto=_after_expert) for p in router_config.experts]
    general = ExpertNode(router_config.fallback, GENERAL_NODE)
    unreachable = []
    for node in [*experts, general]:
        for model, why in node.unavailable.items():
            logger.debug("%s (%s): %s", node.name, model, why)
            unreachable.append((node.name, model))
    notice = offline_notice(unreachable)
    if notice:
        logger.info(notice)

    # Nodes name their next node in a Command, from WIRING, which ``destinations`` draws.
    graph = StateGraph(RouterState, input_schema=RouterInputState)
    names = [node.name for node in experts]
    fan_out = router_config.fan_out.enabled

    def edges(node: str) -> tuple[str, ...]:
        return destinations(node, names, fan_out=fan_out)

    graph.add_node(CLASSIFY_NODE, classify, destinations=edges(CLASSIFY_NODE))
    for node in experts:
        graph.add_node(node.name, node, destinations=edges(EXPERT))
    graph.add_node(GENERAL_NODE, general)
    if fan_out:
        graph.add_node(MERGE_NODE, _merge, destinations=edges(MERGE_NODE))
    graph.add_edge(START, CLASSIFY_NODE)
    for after in edges(GENERAL_NODE):
        graph.add_edge(GENERAL_NODE, after)
    return graph.compile(checkpointer=checkpointer, name=name)

"""The routing graph's ``classify`` node, and what every node shares: ``Node``, events."""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from langchain_core.callbacks import (
    BaseCallbackManager,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langgraph.config import get_stream_writer
from langgraph.runtime import get_runtime
from langgraph.types import Command, Send
from typing_extensions import override

from langchain_domain_router._inputs import NO_QUESTION, Question, read_question
from langchain_domain_router.classifier import DomainClassifier
from langchain_domain_router.config import RouterConfig
from langchain_domain_router.graph.experts import (
    elapsed_ms,
)
from langchain_domain_router.graph.policy import Thresholds, decide, pinned
from langchain_domain_router.schema import (
    CLASSIFY_NODE,
    ROUTING_EVENT,
    DomainPrediction,
    RouterState,
    RoutingRecord,
    routing_record,
)


def listened(run_config: RunnableConfig) -> bool:
    """Whether any callback handler could receive a custom event (skip the dispatch if not)."""
    callbacks = run_config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        return bool(callbacks.handlers or callbacks.inheritable_handlers)
    return bool(callbacks)


def emit(name: str, routing: RoutingRecord, run_config: RunnableConfig) -> None:
    get_stream_writer()({"event": name, "routing": routing})
    if listened(run_config):
        dispatch_custom_event(name, routing, config=run_config)


async def aemit(name: str, routing: RoutingRecord, run_config: RunnableConfig) -> None:
    get_stream_writer()({"event": name, "routing": routing})
    if listened(run_config):
        await adispatch_custom_event(name, routing, config=run_config)


def records_runs(run_config: RunnableConfig) -> bool:
    """Whether a callback handler records chain runs, such as the classifier's own.

    Routing-event handlers (the server's metrics, the audit log) ignore chain runs: for
    them the classifier runs without a run of its own.
    """
    callbacks = run_config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        handlers = callbacks.handlers
    else:
        handlers = callbacks or []
    return any(not handler.ignore_chain for handler in handlers)


def _state_question(state: RouterState) -> tuple[Question, list[BaseMessage]]:
    """Read the question of a state that no entry point read: the graph is the edge.

    The question is the last message when that is a human turn (a ``question`` left in
    a thread's state by an earlier turn is then stale); otherwise ``question`` is
    appended as a new human turn, which is returned as the message to add to state.
    """
    messages: list[BaseMessage] = list(state.get("messages") or [])
    if messages and isinstance(messages[-1], HumanMessage):
        return read_question(messages), []
    question = state.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(NO_QUESTION)
    read = read_question({"messages": messages, "question": question})
    return read, read.messages[len(messages) :]


def _question(state: RouterState) -> tuple[Question, list[BaseMessage]]:
    """The question of this turn over the whole conversation, and the messages to add.

    ``DomainRouter`` reads its input once and hands the ``Question`` in as the run's
    context (its conversation is already the state's last messages); a graph invoked
    on its own, or as a subgraph, reads the state here.
    """
    context = get_runtime().context
    if not isinstance(context, Question):
        return _state_question(state)
    conversation: list[BaseMessage] = list(state.get("messages") or [])
    return replace(context, messages=conversation, index=len(conversation) - 1), []


def _previous_routing(history: list[BaseMessage]) -> dict[str, Any] | None:
    for message in reversed(history):
        if isinstance(message, AIMessage) and "routing" in message.response_metadata:
            return dict(message.response_metadata["routing"])
    return None


Goto = Callable[[RouterState, dict[str, Any]], str | list[Send]]
"""Where a node sends the graph next, given its input state and its update."""


class Node(Runnable[RouterState, dict[str, Any] | Command]):
    """A node's sync and async bodies, which LangGraph calls directly.

    LangGraph already records a run for every node it executes; wrapping the bodies in a
    ``RunnableLambda`` added a second, nested run of the same name, and its callback
    work, to every routed question. The run config LangGraph passes is complete, so it is
    used as it is (``ensure_config`` would copy it once more). A node with a ``goto``
    returns its update in a ``Command`` that names the next node: a conditional edge
    would be one more step per node, reading a fresh copy of every state channel.
    """

    name: str
    goto: Goto | None = None

    @abstractmethod
    def _run(self, state: RouterState, run_config: RunnableConfig) -> dict[str, Any]:
        """The node's state update."""

    @abstractmethod
    async def _arun(self, state: RouterState, run_config: RunnableConfig) -> dict[str, Any]:
        """The node's state update, on the event loop."""

    def _next(self, state: RouterState, update: dict[str, Any]) -> dict[str, Any] | Command:
        if self.goto is None:
            return update
        return Command(update=update, goto=self.goto(state, update))

    @override
    def invoke(
        self, input: RouterState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any] | Command:
        update = self._run(input, ensure_config() if config is None else config)
        return self._next(input, update)

    @override
    async def ainvoke(
        self, input: RouterState, config: RunnableConfig | None = None, **kwargs: Any
    ) -> dict[str, Any] | Command:
        update = await self._arun(input, ensure_config() if config is None else config)
        return self._next(input, update)


class ClassifyNode(Node):
    """Classifies the question and decides the route."""

    def __init__(
        self,
        classifier: DomainClassifier,
        router_config: RouterConfig,
        thresholds: Thresholds,
        *,
        goto: Goto | None = None,
    ) -> None:
        self.name = CLASSIFY_NODE
        self.goto = goto
        self.classifier = classifier
        self.router_config = router_config
        self.thresholds = thresholds

    def _update(
        self, prediction: DomainPrediction, start: float, conversation: list[BaseMessage]
    ) -> dict[str, Any]:
        decision = decide(
            prediction,
            self.router_config,
            self.thresholds,
            classifier_latency_ms=elapsed_ms(start),
            previous=_previous_routing(conversation[:-1]),
        )
        return {
            "prediction": prediction.model_dump(mode="json"),
            "routing": routing_record(decision),
            "answer": None,
            "fan_out_answers": None,
        }

    def _question(self, state: RouterState) -> tuple[Question, list[BaseMessage], str]:
        """The question, the messages to add, and the text the classifier reads."""
        question, new = _question(state)
        return question, new, question.context_text(self.classifier.context_turns)

    def _pinned(self, state: RouterState) -> dict[str, Any] | None:
        """The update of a turn whose caller pinned the expert (``None`` if not pinned).

        The pin is consumed here, so the next turn of a thread is classified again.
        """
        expert = state.get("pinned_expert")
        if not expert:
            return None
        _, new, text = self._question(state)
        version = self.classifier.model_version
        decision = pinned(expert, self.router_config, self.thresholds, model_version=version)
        return {
            "messages": new,
            "question": text,
            "prediction": None,
            "routing": routing_record(decision),
            "answer": None,
            "fan_out_answers": None,
            "pinned_expert": None,
        }

    @override
    def _run(self, state: RouterState, run_config: RunnableConfig) -> dict[str, Any]:
        if (update := self._pinned(state)) is not None:
            emit(ROUTING_EVENT, update["routing"], run_config)
            return update
        question, new, text = self._question(state)
        start = time.perf_counter()
        if records_runs(run_config):
            prediction = self.classifier.invoke(question, run_config)
        else:
            prediction = self.classifier.classify_texts([text])[0]
        update = self._update(prediction, start, question.messages)
        emit(ROUTING_EVENT, update["routing"], run_config)
        return {"messages": new, "question": text, **update}

    @override
    async def _arun(self, state: RouterState, run_config: RunnableConfig) -> dict[str, Any]:
        if (update := self._pinned(state)) is not None:
            await aemit(ROUTING_EVENT, update["routing"], run_config)
            return update
        question, new, text = self._question(state)
        start = time.perf_counter()
        if records_runs(run_config):
            prediction = await self.classifier.ainvoke(question, run_config)
        else:
            prediction = await self.classifier.aclassify(question)
        update = self._update(prediction, start, question.messages)
        await aemit(ROUTING_EVENT, update["routing"], run_config)
        return {"messages": new, "question": text, **update}

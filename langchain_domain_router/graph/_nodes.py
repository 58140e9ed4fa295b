"""The routing graph's nodes: ``classify``, one per expert (and ``general``), ``merge``."""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.callbacks import (
    BaseCallbackManager,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langgraph.config import get_stream_writer
from langgraph.types import Command, Send
from typing_extensions import override

from langchain_domain_router._inputs import expert_messages, question_text, to_state
from langchain_domain_router.classifier import DomainClassifier
from langchain_domain_router.config import RouterConfig
from langchain_domain_router.graph.experts import (
    OfflineExpert,
    acall_expert,
    call_expert,
    describe_failure,
    elapsed_ms,
    resolve_chat_model,
)
from langchain_domain_router.graph.policy import Thresholds, choose_candidate, decide, pinned
from langchain_domain_router.profiles import CandidateModel, ExpertProfile
from langchain_domain_router.schema import (
    CLASSIFY_NODE,
    GENERAL_NODE,
    MERGE_NODE,
    ROUTING_COMPLETE_EVENT,
    ROUTING_EVENT,
    DomainPrediction,
    RouterState,
    RoutingDecision,
)


def _listened(config: RunnableConfig) -> bool:
    """Whether any callback handler could receive a custom event (skip the dispatch if not)."""
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        return bool(callbacks.handlers or callbacks.inheritable_handlers)
    return bool(callbacks)


def _emit(name: str, routing: dict[str, Any], config: RunnableConfig) -> None:
    get_stream_writer()({"event": name, "routing": routing})
    if _listened(config):
        dispatch_custom_event(name, routing, config=config)


async def _aemit(name: str, routing: dict[str, Any], config: RunnableConfig) -> None:
    get_stream_writer()({"event": name, "routing": routing})
    if _listened(config):
        await adispatch_custom_event(name, routing, config=config)


def _conversation(state: RouterState) -> tuple[list[BaseMessage], list[BaseMessage]]:
    """Return the conversation ending in the question, and the messages to add to state.

    The question is the last message when that is a human turn (a ``question`` left in
    a thread's state by an earlier turn is then stale); otherwise ``question`` is
    appended as a new human turn.
    """
    messages: list[BaseMessage] = list(state.get("messages") or [])
    if messages and isinstance(messages[-1], HumanMessage):
        return messages, []
    question = state.get("question")
    if not isinstance(question, str) or not question.strip():
        msg = "the router needs a question: pass 'question' or end 'messages' with a human turn"
        raise ValueError(msg)
    conversation = to_state({"messages": messages, "question": question})["messages"]
    return conversation, conversation[len(messages) :]


def _previous_routing(history: list[BaseMessage]) -> dict[str, Any] | None:
    for message in reversed(history):
        if isinstance(message, AIMessage) and "routing" in message.response_metadata:
            return dict(message.response_metadata["routing"])
    return None


Goto = Callable[[RouterState, dict[str, Any]], str | list[Send]]
"""Where a node sends the graph next, given its input state and its update."""


class _Node(Runnable[RouterState, dict[str, Any] | Command]):
    """A node's sync and async bodies, which LangGraph calls directly.

    LangGraph already records a run for every node it executes; wrapping the bodies in a
    ``RunnableLambda`` added a second, nested run of the same name, and its callback
    work, to every routed question. The config LangGraph passes is complete, so it is
    used as it is (``ensure_config`` would copy it once more). A node with a ``goto``
    returns its update in a ``Command`` that names the next node: a conditional edge
    would be one more step per node, reading a fresh copy of every state channel.
    """

    name: str
    goto: Goto | None = None

    @abstractmethod
    def _run(self, state: RouterState, config: RunnableConfig) -> dict[str, Any]:
        """The node's state update."""

    @abstractmethod
    async def _arun(self, state: RouterState, config: RunnableConfig) -> dict[str, Any]:
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


class ClassifyNode(_Node):
    """Classifies the question and decides the route."""

    def __init__(
        self,
        classifier: DomainClassifier,
        config: RouterConfig,
        thresholds: Thresholds,
        *,
        goto: Goto | None = None,
    ) -> None:
        self.name = CLASSIFY_NODE
        self.goto = goto
        self.classifier = classifier
        self.config = config
        self.thresholds = thresholds

    def _update(
        self, prediction: DomainPrediction, start: float, conversation: list[BaseMessage]
    ) -> dict[str, Any]:
        decision = decide(
            prediction,
            self.config,
            self.thresholds,
            classifier_latency_ms=elapsed_ms(start),
            previous=_previous_routing(conversation[:-1]),
        )
        return {
            "prediction": prediction.model_dump(mode="json"),
            "routing": decision.model_dump(mode="json"),
            "answer": None,
            "fan_out_answers": None,
        }

    def _question(self, state: RouterState) -> tuple[list[BaseMessage], list[BaseMessage], str]:
        """The conversation, the messages to add, and the text the classifier reads."""
        conversation, new = _conversation(state)
        text = question_text(conversation, context_turns=self.classifier.context_turns)
        return conversation, new, text

    def _pinned(self, state: RouterState) -> dict[str, Any] | None:
        """The update of a turn whose caller pinned the expert (``None`` if not pinned).

        The pin is consumed here, so the next turn of a thread is classified again.
        """
        expert = state.get("pinned_expert")
        if not expert:
            return None
        _, new, text = self._question(state)
        version = self.classifier.model_version
        decision = pinned(expert, self.config, self.thresholds, model_version=version)
        return {
            "messages": new,
            "question": text,
            "prediction": None,
            "routing": decision.model_dump(mode="json"),
            "answer": None,
            "fan_out_answers": None,
            "pinned_expert": None,
        }

    @override
    def _run(self, state: RouterState, config: RunnableConfig) -> dict[str, Any]:
        if (update := self._pinned(state)) is not None:
            _emit(ROUTING_EVENT, update["routing"], config)
            return update
        conversation, new, text = self._question(state)
        start = time.perf_counter()
        if _listened(config):
            prediction = self.classifier.invoke(text, config)
        else:
            prediction = self.classifier.classify_texts([text])[0]
        update = self._update(prediction, start, conversation)
        _emit(ROUTING_EVENT, update["routing"], config)
        return {"messages": new, "question": text, **update}

    @override
    async def _arun(self, state: RouterState, config: RunnableConfig) -> dict[str, Any]:
        if (update := self._pinned(state)) is not None:
            await _aemit(ROUTING_EVENT, update["routing"], config)
            return update
        conversation, new, text = self._question(state)
        start = time.perf_counter()
        if _listened(config):
            prediction = await self.classifier.ainvoke(text, config)
        else:
            prediction = await self.classifier.aclassify(text)
        update = self._update(prediction, start, conversation)
        await _aemit(ROUTING_EVENT, update["routing"], config)
        return {"messages": new, "question": text, **update}


@dataclass(frozen=True)
class _Call:
    routing: dict[str, Any]
    """The routing record so far, JSON-ready (``RoutingDecision.model_dump(mode="json")``);
    updated as a dict: validating and dumping the model again cost ~30 us a question."""
    prompt: list[BaseMessage]
    candidate: CandidateModel
    model: BaseChatModel
    fan_out: bool


class ExpertNode(_Node):
    """Runs one expert; the ``general`` node never fails (it degrades to offline)."""

    def __init__(self, profile: ExpertProfile, node: str, *, goto: Goto | None = None) -> None:
        self.name = node
        self.goto = goto
        self.profile = profile
        self.options = profile.options()
        self.resolved = [resolve_chat_model(candidate) for candidate in self.options]

    @property
    def unavailable(self) -> dict[str, str]:
        """Candidate models that could not be built, and why."""
        return {
            candidate.model_name: why
            for candidate, (model, why) in zip(self.options, self.resolved, strict=True)
            if model is None and why
        }

    def _offline(
        self, routing: dict[str, Any], candidate: CandidateModel, why: str | None
    ) -> OfflineExpert:
        return OfflineExpert(
            expert=self.name,
            target_model=candidate.model_name,
            reason=routing["explanation"],
            unavailable=why,
            routing=routing,
        )

    def _prepare(self, state: RouterState) -> _Call:
        routing: dict[str, Any] = dict(state["routing"] or {})
        index, why = choose_candidate(self.profile, routing["domain"])
        candidate = self.options[index]
        if why:
            routing["explanation"] = f"{routing['explanation']}; {why}"
        prompt = expert_messages(
            state.get("messages") or [],
            system_prompt=self.profile.system_prompt,
            policy=self.profile.message_policy,
        )
        model, unavailable = self.resolved[index]
        return _Call(
            routing=routing,
            prompt=prompt,
            candidate=candidate,
            model=model or self._offline(routing, candidate, unavailable),
            fan_out=routing["reason"] == "fan_out",
        )

    def _answered(self, call: _Call, reply: BaseMessage, start: float) -> dict[str, Any]:
        usage = getattr(reply, "usage_metadata", None) or {}
        tokens_in, tokens_out = usage.get("input_tokens"), usage.get("output_tokens")
        offline = isinstance(call.model, OfflineExpert)
        cost = call.candidate.estimate_cost(tokens_in or 0, tokens_out or 0) if usage else None
        routing = {
            **call.routing,
            "expert": MERGE_NODE if call.fan_out else self.name,
            "model": call.candidate.model_name,
            "offline": offline,
            "expert_latency_ms": elapsed_ms(start),
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "estimated_cost_usd": 0.0 if offline else cost,
        }
        message = AIMessage(
            content=reply.content,
            id=reply.id,
            name=self.name,
            response_metadata={**reply.response_metadata, "routing": routing},
            usage_metadata=getattr(reply, "usage_metadata", None),
            tool_calls=getattr(reply, "tool_calls", None) or [],
        )
        if call.fan_out:
            return {"fan_out_answers": [{"expert": self.name, "message": message}]}
        return {"messages": [message], "answer": str(message.text), "routing": routing}

    def _failed(self, call: _Call, error: str) -> tuple[_Call, dict[str, Any] | None]:
        """Record the failure; return the update that hands over, or ``None`` for general."""
        if call.fan_out:
            return call, {"fan_out_answers": [{"expert": self.name, "error": error}]}
        failed = {
            **call.routing,
            "reason": "expert_error",
            "failed_expert": self.name,
            "error": error,
            "explanation": f"{call.routing['explanation']}; expert {self.name!r} failed "
            f"({error}), so the general expert answers",
        }
        if self.name != GENERAL_NODE:
            return call, {"routing": failed}
        offline = self._offline(failed, call.candidate, error)
        return replace(call, routing=failed, model=offline), None

    @override
    def _run(self, state: RouterState, config: RunnableConfig) -> dict[str, Any]:
        call = self._prepare(state)
        start = time.perf_counter()
        try:
            reply = call_expert(call.model, self.profile, call.prompt, config)
        except Exception as exc:  # noqa: BLE001 - any expert failure hands over, never raises
            call, handover = self._failed(call, describe_failure(exc, self.profile))
            if handover is not None:
                return handover
            reply = call.model.invoke(call.prompt, config)
        update = self._answered(call, reply, start)
        if "routing" in update:
            _emit(ROUTING_COMPLETE_EVENT, update["routing"], config)
        return update

    @override
    async def _arun(self, state: RouterState, config: RunnableConfig) -> dict[str, Any]:
        call = self._prepare(state)
        start = time.perf_counter()
        try:
            reply = await acall_expert(call.model, self.profile, call.prompt, config)
        except Exception as exc:  # noqa: BLE001 - any expert failure hands over, never raises
            call, handover = self._failed(call, describe_failure(exc, self.profile))
            if handover is not None:
                return handover
            reply = await call.model.ainvoke(call.prompt, config)
        update = self._answered(call, reply, start)
        if "routing" in update:
            await _aemit(ROUTING_COMPLETE_EVENT, update["routing"], config)
        return update


def _total(values: list[Any]) -> Any:
    return None if any(value is None for value in values) else sum(values)


def merge_answers(state: RouterState, config: RunnableConfig) -> dict[str, Any]:
    """Merge the answers of a top-2 fan-out into one message (or hand over to general)."""
    decision = RoutingDecision.model_validate(state["routing"])
    answers = state.get("fan_out_answers") or []
    messages: list[AIMessage] = [a["message"] for a in answers if "message" in a]
    errors = [f"{a['expert']}: {a['error']}" for a in answers if "error" in a]
    if not messages:
        failed = decision.model_copy(
            update={
                "reason": "expert_error",
                "failed_expert": ",".join(decision.fan_out),
                "error": "; ".join(errors),
                "explanation": f"{decision.explanation}; every fan-out expert failed, so the "
                "general expert answers",
            }
        )
        return {"routing": failed.model_dump(mode="json")}
    records = [RoutingDecision.model_validate(m.response_metadata["routing"]) for m in messages]
    merged = decision.model_copy(
        update={
            "expert": MERGE_NODE,
            "model": " + ".join(str(r.model) for r in records),
            "offline": all(r.offline for r in records),
            "expert_latency_ms": max(r.expert_latency_ms or 0.0 for r in records),
            "input_tokens": _total([r.input_tokens for r in records]),
            "output_tokens": _total([r.output_tokens for r in records]),
            "estimated_cost_usd": _total([r.estimated_cost_usd for r in records]),
            "error": "; ".join(errors) or None,
        }
    )
    routing = merged.model_dump(mode="json")
    text = "\n\n".join(f"[{m.name}]\n{m.text}" for m in messages)
    message = AIMessage(
        content=text,
        name=MERGE_NODE,
        response_metadata={"routing": routing, "fan_out": [r.model_dump() for r in records]},
    )
    _emit(ROUTING_COMPLETE_EVENT, routing, config)
    return {"messages": [message], "answer": text, "routing": routing}

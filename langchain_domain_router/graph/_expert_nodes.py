"""The routing graph's answering nodes: one per expert (and ``general``), and ``merge``."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from typing_extensions import override

from langchain_domain_router._inputs import expert_messages
from langchain_domain_router.graph._nodes import Goto, Node, aemit, emit
from langchain_domain_router.graph.experts import (
    OfflineExpert,
    acall_expert,
    call_expert,
    describe_failure,
    elapsed_ms,
    resolve_chat_model,
)
from langchain_domain_router.graph.policy import choose_candidate
from langchain_domain_router.profiles import CandidateModel, ExpertProfile
from langchain_domain_router.schema import (
    GENERAL_NODE,
    MERGE_NODE,
    REASON_EXPERT_ERROR,
    REASON_FAN_OUT,
    ROUTING_COMPLETE_EVENT,
    RouterState,
    RoutingRecord,
)


@dataclass(frozen=True)
class _Call:
    routing: RoutingRecord
    """The routing record so far, updated as the dict it is: validating and dumping the
    model again cost ~30 us a question."""
    prompt: list[BaseMessage]
    candidate: CandidateModel
    model: BaseChatModel
    fan_out: bool


class ExpertNode(Node):
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
        self, routing: RoutingRecord, candidate: CandidateModel, why: str | None
    ) -> OfflineExpert:
        return OfflineExpert(
            expert=self.name,
            target_model=candidate.model_name,
            reason=routing["explanation"],
            unavailable=why,
            routing=dict(routing),
        )

    def _prepare(self, state: RouterState) -> _Call:
        record = state.get("routing")
        if record is None:
            msg = "an expert node runs after classify, which sets the routing record"
            raise ValueError(msg)
        routing = record.copy()
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
            fan_out=routing["reason"] == REASON_FAN_OUT,
        )

    def _answered(self, call: _Call, reply: BaseMessage, start: float) -> dict[str, Any]:
        usage = getattr(reply, "usage_metadata", None) or {}
        tokens_in, tokens_out = usage.get("input_tokens"), usage.get("output_tokens")
        offline = isinstance(call.model, OfflineExpert)
        cost = call.candidate.estimate_cost(tokens_in or 0, tokens_out or 0) if usage else None
        routing: RoutingRecord = {
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
        failed: RoutingRecord = {
            **call.routing,
            "reason": REASON_EXPERT_ERROR,
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
    def _run(self, state: RouterState, run_config: RunnableConfig) -> dict[str, Any]:
        call = self._prepare(state)
        start = time.perf_counter()
        try:
            reply = call_expert(call.model, self.profile, call.prompt, run_config)
        except Exception as exc:  # noqa: BLE001 - any expert failure hands over, never raises
            call, handover = self._failed(call, describe_failure(exc, self.profile))
            if handover is not None:
                return handover
            reply = call.model.invoke(call.prompt, run_config)
        update = self._answered(call, reply, start)
        if "routing" in update:
            emit(ROUTING_COMPLETE_EVENT, update["routing"], run_config)
        return update

    @override
    async def _arun(self, state: RouterState, run_config: RunnableConfig) -> dict[str, Any]:
        call = self._prepare(state)
        start = time.perf_counter()
        try:
            reply = await acall_expert(call.model, self.profile, call.prompt, run_config)
        except Exception as exc:  # noqa: BLE001 - any expert failure hands over, never raises
            call, handover = self._failed(call, describe_failure(exc, self.profile))
            if handover is not None:
                return handover
            reply = await call.model.ainvoke(call.prompt, run_config)
        update = self._answered(call, reply, start)
        if "routing" in update:
            await aemit(ROUTING_COMPLETE_EVENT, update["routing"], run_config)
        return update


def _total(values: list[Any]) -> Any:
    return None if any(value is None for value in values) else sum(values)


def merge_answers(state: RouterState, run_config: RunnableConfig) -> dict[str, Any]:
    """Merge the answers of a top-2 fan-out into one message (or hand over to general)."""
    routing = state.get("routing")
    if routing is None:
        msg = "merge runs after a fan-out, which sets the routing record"
        raise ValueError(msg)
    answers = state.get("fan_out_answers") or []
    messages: list[AIMessage] = [a["message"] for a in answers if "message" in a]
    errors = [f"{a['expert']}: {a['error']}" for a in answers if "error" in a]
    merged = routing.copy()
    if not messages:
        merged["reason"] = REASON_EXPERT_ERROR
        merged["failed_expert"] = ",".join(routing["fan_out"])
        merged["error"] = "; ".join(errors)
        merged["explanation"] = (
            f"{routing['explanation']}; every fan-out expert failed, so the general expert answers"
        )
        return {"routing": merged}
    records: list[RoutingRecord] = [m.response_metadata["routing"] for m in messages]
    merged["expert"] = MERGE_NODE
    merged["model"] = " + ".join(str(r["model"]) for r in records)
    merged["offline"] = all(r["offline"] for r in records)
    merged["expert_latency_ms"] = max(r["expert_latency_ms"] or 0.0 for r in records)
    merged["input_tokens"] = _total([r["input_tokens"] for r in records])
    merged["output_tokens"] = _total([r["output_tokens"] for r in records])
    merged["estimated_cost_usd"] = _total([r["estimated_cost_usd"] for r in records])
    merged["error"] = "; ".join(errors) or None
    text = "\n\n".join(f"[{m.name}]\n{m.text}" for m in messages)
    message = AIMessage(
        content=text,
        name=MERGE_NODE,
        response_metadata={"routing": merged, "fan_out": [dict(r) for r in records]},
    )
    emit(ROUTING_COMPLETE_EVENT, merged, run_config)
    return {"messages": [message], "answer": text, "routing": merged}

"""The OpenAI Chat Completions surface: ``POST /v1/chat/completions`` and ``GET /v1/models``.

A request goes through the same routing graph as ``/router`` (policy, fallback,
retries, sticky and fan-out settings, audit record, metrics): ``model: "domain-router"``
(or ``"auto"``) routes the question, an expert's name pins that expert (reason
``pinned``). The answer is a standard ``chat.completion`` (or a stream of
``chat.completion.chunk`` events ending with ``data: [DONE]``) with the routing record
as a top-level ``routing`` field and ``x-domain-router-*`` headers.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoint signatures.

import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, cast, get_args

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, convert_to_messages
from langchain_core.messages import convert_to_openai_messages as to_openai
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.runnables import RunnableConfig
from pydantic import ValidationError

from langchain_domain_router._inputs import Question, read_question
from langchain_domain_router.config import RouterConfig, StreamingSettings
from langchain_domain_router.graph.experts import resolve_chat_model
from langchain_domain_router.profiles import ExpertProfile
from langchain_domain_router.router import DomainRouter
from langchain_domain_router.schema import EXPERT_OPTIONS, GENERAL_NODE, REASON_EXPERT_ERROR
from langchain_domain_router.server._openai_errors import error_type
from langchain_domain_router.server._openai_schema import (
    AnswerMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    FinishReason,
    ModelCard,
    ModelList,
    Usage,
    error_body,
)

COMPLETIONS_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
ROUTED_MODEL = "domain-router"
"""The virtual model that routes each question; ``auto`` is accepted as well."""
_ROUTED = frozenset({ROUTED_MODEL, "auto"})
_HEADER = "x-domain-router-"
Tagger = Callable[[dict[str, Any], Request], dict[str, Any]]
"""Puts the request's id in a run config (``_app._tag_request``)."""


class Refused(Exception):
    """A request the route answers with an OpenAI error instead of running it."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        body = error_body(self.message, error_type(self.status), param=self.param, code=self.code)
        return JSONResponse(body, status_code=self.status, headers=headers)


def _capabilities(profile: ExpertProfile) -> frozenset[str]:
    """What every model of an expert takes: ``tools`` and/or ``response_format``."""
    found: list[set[str]] = []
    for candidate in profile.options():
        model, _ = resolve_chat_model(candidate)
        takes: set[str] = set()
        if model is not None and type(model).bind_tools is not BaseChatModel.bind_tools:
            takes.add("tools")
        # ``response_format`` is an OpenAI request field: OpenAI-compatible clients take it.
        if model is not None and type(model).__module__.startswith("langchain_openai"):
            takes.add("response_format")
        found.append(takes)
    return frozenset(set.intersection(*found))


class OpenAIRoutes:
    """The state behind the ``/v1`` routes: the router, the experts and what they take."""

    def __init__(
        self, router: DomainRouter, callbacks: Sequence[BaseCallbackHandler], tag: Tagger
    ) -> None:
        # OpenAI clients cannot discard streamed text, so a /v1 stream always holds each
        # attempt until it has succeeded, whatever ``streaming.buffer`` says.
        config: RouterConfig = router.config.model_copy(update={"streaming": StreamingSettings()})
        self.router = router.model_copy(update={"config": config})
        self.callbacks = list(callbacks)
        self.tag = tag
        profiles = {profile.name: profile for profile in config.experts}
        profiles[GENERAL_NODE] = config.fallback
        self.capabilities = {name: _capabilities(p) for name, p in profiles.items()}

    @property
    def models(self) -> list[str]:
        """The model names a request may ask for: the routed one, then each expert."""
        return [ROUTED_MODEL, *self.capabilities]

    def _pin(self, model: str) -> str | None:
        if model in _ROUTED:
            return None
        if model in self.capabilities:
            return model
        message = (
            f"the model {model[:128]!r} does not exist: use {ROUTED_MODEL!r} to route the "
            f"question, or pin one of the experts {sorted(self.capabilities)}"
        )
        raise Refused(404, message, param="model", code="model_not_found")

    def _check_features(self, body: ChatCompletionRequest, pinned: str | None) -> None:
        """Refuse ``tools`` or ``response_format`` that an expert that may answer cannot take.

        The fallback answers when the chosen expert fails, so it must take them too.
        """
        wanted = [name for name in ("tools", "response_format") if getattr(body, name)]
        if body.tool_choice is not None and "tools" not in wanted:
            raise Refused(400, "'tool_choice' needs 'tools'", param="tool_choice")
        reachable = [pinned, GENERAL_NODE] if pinned else list(self.capabilities)
        for feature in wanted:
            unable = sorted({n for n in reachable if feature not in self.capabilities[n]})
            if unable:
                message = (
                    f"'{feature}' is not supported by the model of expert(s) {unable}, which "
                    f"may answer this request; pin an expert whose model takes '{feature}' "
                    "(its fallback must take it too), or leave it out"
                )
                raise Refused(400, message, param=feature, code="unsupported_parameter")

    def parse(self, payload: Any) -> tuple[ChatCompletionRequest, Question]:
        """Validate a decoded request body; return it and its question, read once.

        Raises:
            Refused: 400 for a malformed body, 404 for an unknown model.
        """
        try:
            body = ChatCompletionRequest.model_validate(payload)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            param = ".".join(str(part) for part in error["loc"]) or None
            raise Refused(400, f"{param or 'body'}: {error['msg']}", param=param) from None
        pinned = self._pin(body.model)
        self._check_features(body, pinned)
        if body.messages[-1].role != "user":
            message = (
                f"messages[{len(body.messages) - 1}]: the conversation must end in a user "
                "turn, the question the router answers"
            )
            raise Refused(400, message, param="messages")
        dumped = [m.model_dump(exclude_none=True, exclude={"refusal"}) for m in body.messages]
        try:
            messages = convert_to_messages(dumped)
            # The limits middleware checked the body's other strings; this, the content.
            question = read_question({"messages": messages, "pinned_expert": pinned}, where="")
        except (TypeError, ValueError, KeyError) as exc:
            raise Refused(400, f"messages: {exc}", param="messages") from None
        return body, question

    async def stream(
        self, body: ChatCompletionRequest, question: Question, config: RunnableConfig
    ) -> Response:
        """Run a streamed request: its held chunks as SSE events, or the upstream error.

        The router's stream passes an attempt's tokens on once the attempt has
        succeeded, so the whole answer is known before the first event is sent: the
        headers can name the expert that answered, and a failure can still be a 502.
        """
        chunks = [
            chunk
            async for chunk in self.router.astream(question, config)
            if isinstance(chunk, AIMessageChunk)
        ]
        routing = chunks[-1].response_metadata["routing"]
        headers = _headers(routing)
        if failure := _upstream_failure(routing):
            return failure.response(headers)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _events(chunks, routing, include_usage=include_usage)
        return StreamingResponse(_sse(events), media_type="text/event-stream", headers=headers)

    def config(self, body: ChatCompletionRequest, request: Request) -> RunnableConfig:
        """The run's config: the server's callbacks, the request id, the call options."""
        config: dict[str, Any] = {
            "callbacks": self.callbacks,
            "run_name": "chat_completions",
            "configurable": {EXPERT_OPTIONS: body.call_options()},
        }
        return cast("RunnableConfig", self.tag(config, request))


def _headers(routing: dict[str, Any]) -> dict[str, str]:
    values = {key: str(routing.get(key) or "") for key in ("expert", "domain", "reason")}
    values["request-id"] = str(routing.get("request_id") or "")
    # Header values are Latin-1: names and labels are ASCII, anything else is dropped.
    return {_HEADER + key: value for key, value in values.items() if value.isascii()}


def _upstream_failure(routing: dict[str, Any]) -> Refused | None:
    """502 (504 for a timeout) when the fallback failed too and only the stand-in spoke."""
    failed = routing.get("reason") == REASON_EXPERT_ERROR and routing.get("offline")
    if not failed or routing.get("failed_expert") != GENERAL_NODE:
        return None
    error = str(routing.get("error") or "")
    status = 504 if error.startswith("timed out") else 502
    message = f"every expert that could answer failed upstream; the fallback: {error}"
    return Refused(status, message, code="upstream_timeout" if status == 504 else "upstream_error")


def _usage(routing: dict[str, Any]) -> Usage | None:
    tokens_in, tokens_out = routing.get("input_tokens"), routing.get("output_tokens")
    if tokens_in is None or tokens_out is None:
        return None
    return Usage(
        prompt_tokens=tokens_in, completion_tokens=tokens_out, total_tokens=tokens_in + tokens_out
    )


def _finish_reason(answer: AIMessage) -> FinishReason:
    if answer.tool_calls:
        return "tool_calls"
    reason = answer.response_metadata.get("finish_reason")
    return cast("FinishReason", reason) if reason in get_args(FinishReason) else "stop"


def _tool_calls(answer: AIMessage) -> list[dict[str, Any]] | None:
    return to_openai(answer).get("tool_calls") if answer.tool_calls else None


def _completion(answer: AIMessage, routing: dict[str, Any]) -> dict[str, Any]:
    message = AnswerMessage(content=str(answer.text), tool_calls=_tool_calls(answer))
    completion = ChatCompletion(
        id=f"chatcmpl-{routing['request_id']}",
        created=int(time.time()),
        model=str(routing.get("model") or ROUTED_MODEL),
        choices=[Choice(message=message, finish_reason=_finish_reason(answer))],
        usage=_usage(routing),
        routing=routing,
    )
    return completion.model_dump(mode="json")


def _events(
    chunks: list[AIMessageChunk], routing: dict[str, Any], *, include_usage: bool
) -> list[bytes]:
    """The SSE events of a held answer: role, text deltas, tool calls, finish, usage."""
    base: dict[str, Any] = {
        "id": f"chatcmpl-{routing['request_id']}",
        "created": int(time.time()),
        "model": str(routing.get("model") or ROUTED_MODEL),
    }
    deltas = [AnswerMessage(content="")]
    deltas += [AnswerMessage(role=None, content=str(c.text)) for c in chunks if c.text]
    whole = add_ai_message_chunks(chunks[0], *chunks[1:])
    answer = AIMessage(
        content=whole.content,
        response_metadata=whole.response_metadata,
        tool_calls=whole.tool_calls,
    )
    if answer.tool_calls:
        calls = [{"index": i, **call} for i, call in enumerate(_tool_calls(answer) or [])]
        deltas.append(AnswerMessage(role=None, tool_calls=calls))
    events = [ChatCompletionChunk(**base, choices=[ChunkChoice(delta=d)]) for d in deltas]
    finish = ChunkChoice(delta=AnswerMessage(role=None), finish_reason=_finish_reason(answer))
    events.append(ChatCompletionChunk(**base, choices=[finish], routing=routing))
    if include_usage:
        events.append(ChatCompletionChunk(**base, choices=[], usage=_usage(routing)))
    lines = [
        f"data: {json.dumps(e.model_dump(mode='json'), ensure_ascii=False)}\n\n" for e in events
    ]
    return [line.encode() for line in [*lines, "data: [DONE]\n\n"]]


async def _sse(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


def add_openai_routes(
    app: FastAPI,
    router: DomainRouter,
    *,
    callbacks: Sequence[BaseCallbackHandler],
    tag: Tagger,
) -> None:
    """Mount ``POST /v1/chat/completions`` and ``GET /v1/models`` on ``app``.

    Args:
        app: The FastAPI app (``create_app``'s).
        router: The router that answers.
        callbacks: The server's callback handlers (metrics, audit), run with every request.
        tag: Puts the request's id in the run config.

    Example:
        ```python
        add_openai_routes(app, router, callbacks=[metrics], tag=_tag_request)
        ```
    """
    routes = OpenAIRoutes(router, callbacks, tag)

    @app.get(MODELS_PATH, tags=["openai"])
    async def list_models() -> dict[str, Any]:
        return ModelList(data=[ModelCard(id=name) for name in routes.models]).model_dump()

    @app.post(COMPLETIONS_PATH, tags=["openai"])
    async def chat_completions(request: Request) -> Response:
        try:
            # The body as the limits middleware decoded it (CheckedBodyRoute).
            body, question = routes.parse(await request.json())
        except Refused as refusal:
            return refusal.response()
        config = routes.config(body, request)
        if body.stream:
            return await routes.stream(body, question, config)
        answer = await routes.router.ainvoke(question, config)
        routing = answer.response_metadata["routing"]
        headers = _headers(routing)
        if failure := _upstream_failure(routing):
            return failure.response(headers)
        return JSONResponse(_completion(answer, routing), headers=headers)

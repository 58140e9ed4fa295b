"""The OpenAI Chat Completions wire format: what ``/v1/chat/completions`` takes and returns.

Only the fields the router can honour are accepted; any other is a 400 naming it, as
OpenAI itself answers an unrecognised argument. Responses carry one extra top-level
field, ``routing`` (the ``RoutingDecision``), which the OpenAI SDKs keep.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PASSED_THROUGH = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "user",
    "frequency_penalty",
    "presence_penalty",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
)
"""Request fields handed to the answering expert's chat model as call options."""
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]
"""Why the answer ended."""


class _Strict(BaseModel):
    """A request part: unknown fields and silently converted types are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class FunctionCall(_Strict):
    """A function call in an assistant message: its name and JSON arguments."""

    name: str
    arguments: str


class ToolCall(_Strict):
    """A tool call in an assistant message."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionDefinition(_Strict):
    """A function a tool calls: its name, what it does, and its JSON-schema parameters."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Strict):
    """A tool the expert may call."""

    type: Literal["function"]
    function: FunctionDefinition


class NamedToolChoice(_Strict):
    """``tool_choice`` naming one function."""

    type: Literal["function"]
    function: dict[Literal["name"], str]


class ResponseFormat(_Strict):
    """``response_format``: plain text, any JSON object, or JSON following a schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class TextPart(_Strict):
    """A text content part."""

    type: Literal["text"]
    text: str


class ImageUrl(_Strict):
    """Where an image is: an ``https:`` or ``data:`` URL."""

    url: str = Field(pattern=r"^(https?:|data:)")
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Strict):
    """An image content part (passed to the expert; the classifier reads only text)."""

    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(_Strict):
    """One message of the conversation, as OpenAI's API takes it.

    Example:
        ```python
        ChatMessage(role="user", content="미분계수의 정의는?")
        ```
    """

    role: Literal["system", "developer", "user", "assistant", "tool"]
    """Who speaks; the conversation must end in a ``user`` turn (the question)."""
    content: str | list[ContentPart] | None = None
    """Text, or a list of content parts (``{"type": "text", "text": ...}``, ...)."""
    name: str | None = None
    """An optional name of the speaker."""
    tool_calls: list[ToolCall] | None = None
    """An assistant's tool calls."""
    tool_call_id: str | None = None
    """The call a ``tool`` message answers."""
    refusal: str | None = None
    """An assistant's refusal, as earlier answers carry it (not passed on)."""


class StreamOptions(_Strict):
    """``stream_options``: whether the last chunk reports token usage."""

    include_usage: bool = False


class ChatCompletionRequest(_Strict):
    """A ``POST /v1/chat/completions`` body.

    Example:
        ```python
        ChatCompletionRequest(
            model="domain-router", messages=[{"role": "user", "content": "근저당권이란?"}]
        )
        ```
    """

    model: str = Field(min_length=1, max_length=128)
    """``domain-router`` (or ``auto``) to route, or an expert's name to pin it."""
    messages: list[ChatMessage] = Field(min_length=1)
    """The conversation, ending in the user's question."""
    stream: bool = False
    """Answer as server-sent ``chat.completion.chunk`` events."""
    stream_options: StreamOptions | None = None
    """Streaming options."""
    n: Literal[1] | None = None
    """Choices to return: the router answers once."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Sampling temperature, passed to the expert."""
    top_p: float | None = Field(default=None, ge=0, le=1)
    """Nucleus sampling, passed to the expert."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Tokens the answer may hold, passed to the expert."""
    max_completion_tokens: int | None = Field(default=None, ge=1)
    """Tokens the answer may hold (newer name), passed to the expert."""
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    """Stop sequences (up to 4), passed to the expert."""
    seed: int | None = None
    """Sampling seed, passed to the expert."""
    user: str | None = Field(default=None, max_length=256)
    """An end-user id, passed to the expert."""
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    """Passed to the expert."""
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    """Passed to the expert."""
    tools: list[Tool] | None = Field(default=None, min_length=1, max_length=128)
    """Tools the expert may call; only experts whose model takes tools can answer."""
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    """Which tool to call, passed with ``tools``."""
    parallel_tool_calls: bool | None = None
    """Passed with ``tools``."""
    response_format: ResponseFormat | None = None
    """Structured output; only OpenAI-compatible expert models take it."""

    def call_options(self) -> dict[str, Any]:
        """The fields passed to the expert's chat model, as keyword arguments."""
        options = self.model_dump(include=set(PASSED_THROUGH), exclude_none=True)
        if isinstance(options.get("stop"), str):
            options["stop"] = [options["stop"]]
        return options


class Usage(BaseModel):
    """Token usage, from the expert's usage metadata."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AnswerMessage(BaseModel):
    """The assistant message of a choice, or the delta of a chunk."""

    role: Literal["assistant"] | None = "assistant"
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class Choice(BaseModel):
    """The one choice of a completion."""

    index: int = 0
    message: AnswerMessage
    finish_reason: FinishReason | None
    logprobs: None = None


class _Answer(BaseModel):
    """What a completion and each of its chunks share."""

    id: str
    """``chatcmpl-`` and the routing record's ``request_id``."""
    created: int
    model: str
    """The model that answered."""
    usage: Usage | None = None


class ChatCompletion(_Answer):
    """A ``chat.completion`` object, with the routing record.

    Example:
        ```python
        completion = client.chat.completions.create(model="domain-router", messages=[...])
        completion.choices[0].message.content, completion.routing["expert"]
        ```
    """

    object: Literal["chat.completion"] = "chat.completion"
    choices: list[Choice]
    routing: dict[str, Any]
    """The routing decision (``RoutingDecision`` as JSON)."""


class ChunkChoice(BaseModel):
    """The one choice of a streamed chunk."""

    index: int = 0
    delta: AnswerMessage
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(_Answer):
    """A ``chat.completion.chunk`` event; the finishing one carries ``routing``."""

    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    choices: list[ChunkChoice]
    routing: dict[str, Any] | None = None


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "domain-router"


class ModelList(BaseModel):
    """``GET /v1/models``: the virtual routed model, then each expert."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


def error_body(
    message: str, kind: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}

"""What ``/router`` and ``/classify`` accept over HTTP, with errors that name the field.

LangServe validates a request's ``input`` against the served input type. Left to
pydantic's union of LangChain message types, some malformed messages escape as a
``TypeError`` or ``KeyError`` from inside ``langchain_core`` (a 500); here every shape
the graph cannot take is a ``ValueError`` whose message starts with the field's path
(``input.messages[1].content: ...``), which the server answers with 422.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Self

from fastapi import Request, Response
from fastapi.routing import APIRoute
from langchain_core.messages import AnyMessage, BaseMessage
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from langchain_domain_router._inputs import Question, read_question

_MESSAGE = TypeAdapter(AnyMessage)
_MESSAGE_TYPES = frozenset(
    {"human", "ai", "system", "tool", "function", "chat"}
    | {f"{kind}MessageChunk" for kind in ("AI", "Human", "Chat", "System", "Function", "Tool")}
)
_REQUEST_KEYS = frozenset({"question", "messages"})
DECODED_BODY = "domain_router.decoded_body"
"""ASGI scope key of a request body as the limits middleware decoded it (the JSON)."""
CHECKED_BODY = "domain_router.checked_body"
"""ASGI scope key of a request body the limits middleware decoded and read: the JSON,
with each input replaced by its ``Question``."""


class RouterRequest(BaseModel):
    """A ``question``, or a conversation (``messages``) ending in a human turn.

    Example:
        ```python
        RemoteRunnable("http://127.0.0.1:8000/router").invoke({"question": "미분이란?"})
        ```
    """

    model_config = ConfigDict(extra="forbid")

    question: str | None = None
    """The question; appended as a human turn after ``messages`` when both are given."""
    messages: list[AnyMessage] = Field(default_factory=list)
    """Earlier turns, or the whole conversation when ``question`` is absent."""

    @model_validator(mode="after")
    def _has_question(self) -> Self:
        read_question({"question": self.question, "messages": self.messages}, question_last=False)
        return self


def _json_kind(value: Any) -> str:
    kinds = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    kinds |= {list: "a list", dict: "an object", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def _check_content(content: Any, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        msg = f"{where}: must be a string or a list of content blocks, not {_json_kind(content)}"
        raise ValueError(msg)
    for index, block in enumerate(content):
        if isinstance(block, str):
            continue
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            msg = f"{where}[{index}]: a content block is a string or an object with a 'type'"
            raise ValueError(msg)
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            msg = f"{where}[{index}].text: a text block needs a 'text' string"
            raise ValueError(msg)


def parse_message(value: Any, where: str) -> BaseMessage:
    """Turn one JSON chat message into a LangChain message.

    Args:
        value: The decoded JSON value.
        where: Its path in the request, for the error message (``"input[0]"``).

    Returns:
        The message.

    Raises:
        ValueError: If the value is not a chat message the router can take.
    """
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        msg = (
            f"{where}: a chat message is an object with a 'type' (human, ai, system, tool) "
            f"and a 'content', not {_json_kind(value)}"
        )
        raise ValueError(msg)
    if value["type"] not in _MESSAGE_TYPES:
        msg = f"{where}.type: unknown message type {value['type'][:40]!r}"
        raise ValueError(msg)
    _check_content(value.get("content"), f"{where}.content")
    try:
        return _MESSAGE.validate_python(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"][1:]
        )
        msg = f"{where}{field}: {error['msg']}"
        raise ValueError(msg) from None
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        # langchain_core's own message validators raise these for some shapes.
        msg = f"{where}: not a valid {value['type']!r} message ({type(exc).__name__}: {exc})"
        raise ValueError(msg) from None


def _parse_messages(value: Any, where: str) -> list[BaseMessage]:
    if not isinstance(value, list):
        msg = f"{where}: must be a list of chat messages, not {_json_kind(value)}"
        raise ValueError(msg)
    return [parse_message(item, f"{where}[{index}]") for index, item in enumerate(value)]


def _parse(value: Any, where: str) -> Any:
    """Turn one decoded JSON input into what the runnables take, naming a bad field."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return _parse_messages(value, where)
    if isinstance(value, dict):
        unknown = sorted(set(value) - _REQUEST_KEYS)
        if unknown:
            msg = (
                f"{where}.{unknown[0][:40]}: unknown field; an input object has 'question' "
                "and/or 'messages'"
            )
            raise ValueError(msg)
        question = value.get("question")
        if question is not None and not isinstance(question, str):
            msg = f"{where}.question: must be a string, not {_json_kind(question)}"
            raise ValueError(msg)
        messages = _parse_messages(value.get("messages", []), f"{where}.messages")
        return {"question": question, "messages": messages}
    msg = (
        f"{where}: must be a string, a list of chat messages, or an object with "
        f"'question' or 'messages', not {_json_kind(value)}"
    )
    raise ValueError(msg)


def parse_served_input(value: Any, where: str = "input") -> Question:
    """Validate one ``/router`` or ``/classify`` input decoded from JSON.

    Args:
        value: A string, a list of chat messages, or an object with ``question``
            and/or ``messages``.
        where: The input's path in the request (``"input"``, ``"inputs[2]"``).

    Returns:
        The question, read once under the classifier's rule (any conversation holding
        a human turn); the classifier takes it as it is.

    Raises:
        ValueError: For anything the router cannot take; the message starts with the
            offending field's path.

    Example:
        ```python
        parse_served_input({"question": "미분이란?"})
        parse_served_input([{"type": "human", "content": 5}])  # ValueError: input[0].content
        ```
    """
    return _checked(value, where, question_last=False)


def parse_router_input(value: Any, where: str = "input") -> Question:
    """Validate one ``/router`` input: ``parse_served_input`` under the router's own rule.

    The router answers a question: a conversation without a ``question`` must end in a
    human turn (the classifier, which only reads the last human turn, takes any). The
    question it returns is the router's input, not read again.

    Raises:
        ValueError: For anything the router cannot take, naming the field.

    Example:
        ```python
        parse_router_input([{"type": "human", "content": "미분?"}, {"type": "ai", "content": "…"}])
        # ValueError: input: the router needs a question: ... end 'messages' with a human turn
        ```
    """
    return _checked(value, where, question_last=True)


def _checked(value: Any, where: str, *, question_last: bool) -> Question:
    """Read the question of JSON ``value``; a refusal names the field ``where``."""
    parsed = _parse(value, where)
    try:
        return read_question(parsed, question_last=question_last, where=where)
    except (TypeError, ValueError) as exc:
        text = str(exc)
        msg = text if text.startswith(where) else f"{where}: {text}"
        raise ValueError(msg) from None


def _validate_input(value: Any) -> Question:
    """LangServe's check of an input: what the limits middleware read, taken as it is."""
    return value if isinstance(value, Question) else parse_served_input(value)


ServedInput = Annotated[
    Any,
    PlainValidator(_validate_input, json_schema_input_type=str | list[AnyMessage] | RouterRequest),
]
"""What ``/router`` and ``/classify`` accept: a string, a message list, or a
``RouterRequest``; anything without a question is 422 before the graph runs."""


class _CheckedBodyRequest(Request):
    """A request whose JSON body is the one the limits middleware decoded and read."""

    async def json(self) -> Any:
        checked = self.scope.get(CHECKED_BODY)
        return await super().json() if checked is None else checked


class CheckedBodyRoute(APIRoute):
    """A route that takes the body the limits middleware decoded, inputs read.

    LangServe's endpoints decode the body (``request.json()``) and validate each input;
    under this route class they get the decoded body with its inputs already read
    (``Question``), which ``ServedInput`` takes as they are: a body is decoded once and
    its question read once. FastAPI's documented way to change the ``Request`` a route
    gets: https://fastapi.tiangolo.com/how-to/custom-request-and-route/
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, given a ``_CheckedBodyRequest``."""
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            return await handler(_CheckedBodyRequest(request.scope, request.receive))

        return checked

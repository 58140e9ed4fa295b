"""What ``/router`` and ``/classify`` accept over HTTP, with errors that name the field.

LangServe validates a request's ``input`` against the served input type. Left to
pydantic's union of LangChain message types, some malformed messages escape as a
``TypeError`` or ``KeyError`` from inside ``langchain_core`` (a 500); here every shape
the graph cannot take is a ``ValueError`` whose message starts with the field's path
(``input.messages[1].content: ...``), which the server answers with 422.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Annotated, Any, Self

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

from langchain_domain_router._inputs import InputState, to_state

_MESSAGE = TypeAdapter(AnyMessage)
_MESSAGE_TYPES = frozenset(
    {"human", "ai", "system", "tool", "function", "chat"}
    | {f"{kind}MessageChunk" for kind in ("AI", "Human", "Chat", "System", "Function", "Tool")}
)
_REQUEST_KEYS = frozenset({"question", "messages"})
_CHECKED: ContextVar[list[tuple[Any, InputState]] | None] = ContextVar("_CHECKED", default=None)
"""The inputs this request's checks built, with the JSON each was built from."""


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
        to_state({"question": self.question, "messages": self.messages}, question_last=False)
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


def parse_served_input(value: Any, where: str = "input") -> InputState:
    """Validate one ``/router`` or ``/classify`` input decoded from JSON.

    Args:
        value: A string, a list of chat messages, or an object with ``question``
            and/or ``messages``.
        where: The input's path in the request (``"input"``, ``"inputs[2]"``).

    Returns:
        The graph's input state (``to_state`` with ``question_last=False``), which the
        classifier takes without reading it again.

    Raises:
        ValueError: For anything the router cannot take; the message starts with the
            offending field's path.

    Example:
        ```python
        parse_served_input({"question": "미분이란?"})
        parse_served_input([{"type": "human", "content": 5}])  # ValueError: input[0].content
        ```
    """
    return _checked(partial(to_state, question_last=False), value, where)


def parse_router_input(value: Any, where: str = "input") -> InputState:
    """Validate one ``/router`` input: ``parse_served_input`` under the router's own rule.

    The router answers a question: a conversation without a ``question`` must end in a
    human turn (the classifier, which only reads the last human turn, takes any). The
    state it returns is the router's input, not checked again.

    Raises:
        ValueError: For anything the router cannot take, naming the field.

    Example:
        ```python
        parse_router_input([{"type": "human", "content": "미분?"}, {"type": "ai", "content": "…"}])
        # ValueError: input: the router needs a question: ... end 'messages' with a human turn
        ```
    """
    return _checked(to_state, value, where)


def _checked(build: Callable[[Any], InputState], value: Any, where: str) -> InputState:
    """Build the state of JSON ``value``; a refusal names the field ``where``.

    Within ``reusing_checked_inputs``, the state is remembered for ``ServedInput``.
    """
    parsed = _parse(value, where)
    try:
        state = build(parsed)
    except (TypeError, ValueError) as exc:
        msg = f"{where}: {exc}"
        raise ValueError(msg) from None
    if (checked := _CHECKED.get()) is not None:
        checked.append((value, state))
    return state


@contextmanager
def reusing_checked_inputs() -> Iterator[None]:
    """Let ``ServedInput`` take the states that this request's input checks built.

    The limits middleware checks a request's inputs, then LangServe decodes the body
    again and validates it as ``ServedInput``; within this block that validation takes
    the state built for an equal input instead of building it a second time.
    """
    token = _CHECKED.set([])
    try:
        yield
    finally:
        _CHECKED.reset(token)


def _reused(value: Any) -> InputState | None:
    """The state built for an input equal to ``value`` in this request, taken once."""
    checked = _CHECKED.get() or []
    for index, (seen, state) in enumerate(checked):
        if seen == value:
            del checked[index]
            return state
    return None


def _validate_input(value: Any) -> InputState:
    state = _reused(value)  # one argument: pydantic passes no validation info
    return parse_served_input(value) if state is None else state


ServedInput = Annotated[
    Any,
    PlainValidator(_validate_input, json_schema_input_type=str | list[AnyMessage] | RouterRequest),
]
"""What ``/router`` and ``/classify`` accept: a string, a message list, or a
``RouterRequest``; anything without a question is 422 before the graph runs."""

"""User inputs to the question text to classify; a conversation to an expert's messages."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompt_values import PromptValue

from langchain_domain_router._text import require_text

if TYPE_CHECKING:
    from langchain_domain_router.profiles import MessagePolicy

RouterInput = str | BaseMessage | Sequence[BaseMessage] | PromptValue | Mapping[str, Any]
"""What the classifier and the router accept: a string, a chat message, a list of
messages, a ``PromptValue``, or a dict with ``question`` or ``messages``."""


_Config = TypeVar("_Config")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "tags": (list,),
    "metadata": (Mapping,),
    "run_name": (str,),
    "configurable": (Mapping,),
    "callbacks": (list, BaseCallbackManager),
}


class InputState(dict[str, Any]):
    """The graph's input state as ``to_state`` built it: ``{"messages": [...]}``, checked.

    Handed on (the server's request validation builds it), it is taken as it is: the
    router when it was checked under the router's rule (``question_last``), the
    classifier under either rule, so a question is read once per request.

    Example:
        ```python
        state = to_state("미분이란?")  # InputState, question_last=True
        router.invoke(state)  # not checked again
        ```
    """

    __slots__ = ("question_last",)
    question_last: bool
    """Whether the conversation was checked to end in the human turn it asks."""

    def __init__(
        self, messages: list[BaseMessage], *, question_last: bool, pinned_expert: str | None = None
    ) -> None:
        super().__init__(messages=messages)
        if pinned_expert:
            self["pinned_expert"] = pinned_expert
        self.question_last = question_last


def check_text(text: str, where: str) -> str:
    r"""Return ``text``, or raise when it holds an unpaired surrogate.

    JSON escapes (``"\ud800"``) and Python strings can carry half of a UTF-16 pair;
    such text cannot be encoded as UTF-8, so a tokenizer, a model API or a log line
    would fail on it later. The rule is the same in process and over HTTP: reject it.

    Args:
        text: The string to check.
        where: What the string is, for the message (``"the question"``).

    Returns:
        ``text`` unchanged.

    Raises:
        ValueError: If ``text`` holds an unpaired surrogate code point.
    """
    if not text.isascii() and (found := _SURROGATE.search(text)):
        msg = (
            f"{where} holds an unpaired surrogate (U+{ord(found.group()):04X}) at index "
            f"{found.start()}: it is not valid Unicode text"
        )
        raise ValueError(msg)
    return text


def check_config(config: _Config) -> _Config:
    """Return ``config`` if it is a ``RunnableConfig`` the router and the classifier can honour.

    Raises:
        TypeError: If ``config`` is not a mapping, or a known key has the wrong type.
        ValueError: If ``recursion_limit`` or ``max_concurrency`` is not a positive int.
    """
    if config is None:
        return config
    if not isinstance(config, Mapping):
        msg = f"config must be a dict (a RunnableConfig), not a {type(config).__name__}"
        raise TypeError(msg)
    for key, kinds in _CONFIG_TYPES.items():
        value = config.get(key)
        if value is not None and not isinstance(value, kinds):
            msg = f"config[{key!r}] must be a {kinds[0].__name__}, not a {type(value).__name__}"
            raise TypeError(msg)
    for key in ("recursion_limit", "max_concurrency"):
        value = config.get(key)
        if value is not None and (type(value) is not int or value < 1):
            msg = f"config[{key!r}] must be a positive int, not {value!r}"
            raise ValueError(msg)
    return config


def check_batch(inputs: Any, config: Any) -> list[Any]:
    """Return ``inputs`` as a list after checking the arguments of a ``batch`` call.

    Raises:
        TypeError: If ``inputs`` is not a list (a string would be routed character by
            character), or a config is not a ``RunnableConfig``.
        ValueError: If a config holds a value the graph cannot honour.
    """
    if isinstance(inputs, str | bytes | Mapping) or not isinstance(inputs, Sequence):
        msg = f"batch takes a list of inputs, not a {type(inputs).__name__}"
        raise TypeError(msg)
    for item in config if isinstance(config, list) else [config]:
        check_config(item)
    return list(inputs)


def message_text(message: BaseMessage) -> str:
    """Return the plain text of a message, joining the text parts of multimodal content.

    Args:
        message: Any chat message.

    Returns:
        The message's text; an empty string when it has no text part.
    """
    return str(message.text)


def last_human_index(messages: Sequence[BaseMessage]) -> int | None:
    """Return the index of the last human message, or ``None`` when there is none."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return index
    return None


def check_messages(messages: Any) -> Sequence[BaseMessage]:
    """Return ``messages`` if it is a list of chat messages whose text is valid Unicode.

    Raises:
        TypeError: If ``messages`` is not a list of ``BaseMessage`` instances.
        ValueError: If a message's text holds an unpaired surrogate.
    """
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        msg = f"'messages' must be a list of chat messages, not a {type(messages).__name__}"
        raise TypeError(msg)
    for index, message in enumerate(messages):
        if not isinstance(message, BaseMessage):
            msg = (
                "a list input must contain only chat messages (BaseMessage instances); "
                f"item {index} is a {type(message).__name__}"
            )
            raise TypeError(msg)
        for text in _strings(message.content):
            check_text(text, f"message {index}'s content")
    return messages


def _strings(value: Any) -> Iterator[str]:
    """Yield every string in a message's content (a string, or a list of blocks)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def question_text(messages: Sequence[BaseMessage], *, context_turns: int = 0) -> str:
    """Return the text to classify in a conversation.

    The last human message is the question; ``context_turns`` earlier human turns are
    prepended (newline-separated) so a short follow-up keeps its topic.

    Args:
        messages: A conversation holding at least one human message.
        context_turns: How many earlier human turns to prepend.

    Returns:
        The text, stripped of surrounding whitespace.

    Raises:
        ValueError: If there is no human message, or no text to classify.
    """
    index = last_human_index(messages)
    if index is None:
        msg = "the messages contain no human message to classify"
        raise ValueError(msg)
    humans = [m for m in messages[: index + 1] if isinstance(m, HumanMessage)]
    return require_text("\n".join(message_text(m) for m in humans[-(context_turns + 1) :]))


def _mapping_messages(value: Mapping[str, Any]) -> list[BaseMessage]:
    question = value.get("question")
    if question is not None and not isinstance(question, str):
        msg = f"'question' must be a string, not a {type(question).__name__}"
        raise TypeError(msg)
    messages = value.get("messages")
    if messages is not None:
        check_messages(messages)
    if isinstance(question, str):
        check_text(question, "the question")
        return [*(messages or []), HumanMessage(content=question)]
    if messages is None:
        msg = "a dict input needs a 'question' string or a 'messages' list"
        raise ValueError(msg)
    return list(messages)


def to_state(value: Any, *, question_last: bool = True) -> InputState:
    """Turn a router input into the routing graph's input state, checking it once.

    A string becomes a human message; a dict's ``question`` is appended as a human turn
    after its ``messages``. The conversation must hold a human message with text (the
    question); which text is classified (``context_turns``) the ``classify`` node decides.

    Args:
        value: A string, a chat message, a list of messages, a ``PromptValue``, or a
            mapping with a ``question`` (string) or ``messages`` (list) key, and
            optionally a ``pinned_expert`` (the expert that answers, unclassified).
        question_last: Require the conversation to end in the human turn it asks (the
            router answers that turn); ``False`` takes any conversation holding a human
            message (the classifier reads the last one).

    Returns:
        ``{"messages": [...]}``, as an ``InputState`` that records ``question_last``.

    Raises:
        TypeError: If ``value`` is of a kind the router does not accept.
        ValueError: If there is no question, or its text is not valid Unicode.

    Example:
        ```python
        to_state({"question": "미분이란?"})  # {"messages": [HumanMessage("미분이란?")]}
        ```
    """
    messages: list[BaseMessage]
    pin = value.get("pinned_expert") if isinstance(value, Mapping) else None
    if pin is not None and not isinstance(pin, str):
        msg = f"'pinned_expert' must be an expert's name, not a {type(pin).__name__}"
        raise TypeError(msg)
    if isinstance(value, str):
        messages = [HumanMessage(content=check_text(value, "the question"))]
    elif isinstance(value, PromptValue):
        messages = value.to_messages()
    elif isinstance(value, BaseMessage):
        messages = [value]
    elif isinstance(value, Mapping):
        messages = _mapping_messages(value)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        messages = list(value)
    else:
        msg = (
            f"cannot route a {type(value).__name__}: pass a string, a chat message, a list "
            "of messages, a PromptValue, or a dict with 'question' or 'messages'"
        )
        raise TypeError(msg)
    check_messages(messages)
    index = last_human_index(messages)
    if index is None and len(messages) == 1 and not question_last:
        index = 0  # for the classifier, one message is the question whatever its type
    if question_last and index != len(messages) - 1:
        msg = "the router needs a question: pass 'question' or end 'messages' with a human turn"
        raise ValueError(msg)
    if index is None:
        msg = "the messages contain no human message to classify"
        raise ValueError(msg)
    require_text(message_text(messages[index]))
    return InputState(messages, question_last=question_last, pinned_expert=pin)


def extract_question(value: Any, *, context_turns: int = 0) -> str:
    """Return the question text in ``value``: ``question_text`` of its ``to_state``.

    Args:
        value: What ``to_state`` accepts, or the ``InputState`` it built (not read again).
        context_turns: How many earlier human turns to prepend.

    Returns:
        The text, stripped of surrounding whitespace.

    Raises:
        TypeError: If ``value`` is of a kind the router does not accept.
        ValueError: If there is no text to classify.
    """
    if isinstance(value, str):
        return require_text(check_text(value, "the question"))
    if isinstance(value, InputState):
        messages = value["messages"]
        if len(messages) == 1 and last_human_index(messages) is None:
            return require_text(message_text(messages[0]))  # to_state took it as the question
        return question_text(messages, context_turns=context_turns)
    messages = to_state(value, question_last=False)["messages"]
    if isinstance(value, BaseMessage):
        return require_text(message_text(messages[0]))
    return question_text(messages, context_turns=context_turns)


def expert_messages(
    messages: Sequence[BaseMessage], *, system_prompt: str | None, policy: MessagePolicy
) -> list[BaseMessage]:
    """The messages an expert receives under its message policy.

    Args:
        messages: The conversation, ending in the question.
        system_prompt: The expert's own system prompt.
        policy: ``"last_human"``, ``"conversation"`` (no tool traffic) or ``"all"``.

    Returns:
        At most one system message (the expert's prompt, then the conversation's system
        messages unless the policy is ``"last_human"``), then the policy's messages.
    """
    systems = [system_prompt] if system_prompt else []
    if policy == "last_human":
        index = last_human_index(messages)
        body: list[BaseMessage] = [] if index is None else [messages[index]]
    else:
        systems += [str(m.text) for m in messages if isinstance(m, SystemMessage)]
        body = [m for m in messages if not isinstance(m, SystemMessage)]
        if policy == "conversation":
            body = [
                m
                for m in body
                if isinstance(m, HumanMessage) or (isinstance(m, AIMessage) and not m.tool_calls)
            ]
    head: list[BaseMessage] = [SystemMessage(content="\n\n".join(systems))] if systems else []
    return head + body

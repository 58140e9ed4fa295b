"""User inputs to the question text to classify; a conversation to an expert's messages."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompt_values import PromptValue

from langchain_domain_router._text import require_text

if TYPE_CHECKING:
    from langchain_domain_router.profiles import MessagePolicy


_Config = TypeVar("_Config")
NO_QUESTION = "the router needs a question: pass 'question' or end 'messages' with a human turn"
"""The refusal of a conversation that does not end in the question it asks."""
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "tags": (list,),
    "metadata": (Mapping,),
    "run_name": (str,),
    "configurable": (Mapping,),
    "callbacks": (list, BaseCallbackManager),
}


@dataclass(frozen=True, slots=True)
class Question:
    """A router input read and checked once: what everything after the edge takes.

    Example:
        ```python
        question = read_question({"question": "  미분이란? "})
        question.text  # '미분이란?'
        ```
    """

    messages: list[BaseMessage]
    """The conversation, holding the question turn (for the graph state and the experts)."""
    index: int
    """Where the question turn is in ``messages``."""
    text: str
    """The question turn's text, checked and stripped."""
    pinned_expert: str | None = None
    """The expert the caller pinned, if any."""

    def context_text(self, context_turns: int) -> str:
        """The text to classify: ``context_turns`` earlier human turns, then the question.

        A short follow-up keeps its topic when earlier turns are prepended
        (newline-separated).
        """
        if context_turns < 1:
            return self.text
        earlier = [m for m in self.messages[: self.index] if isinstance(m, HumanMessage)]
        turns = [message_text(m) for m in earlier[-context_turns:]]
        return "\n".join([*turns, self.text]).lstrip()

    def state(self) -> dict[str, Any]:
        """The routing graph's input state: the conversation, and the pin if any."""
        if self.pinned_expert:
            return {"messages": self.messages, "pinned_expert": self.pinned_expert}
        return {"messages": self.messages}


RouterInput = str | BaseMessage | Sequence[BaseMessage] | PromptValue | Mapping[str, Any] | Question
"""What the classifier and the router accept: a string, a chat message, a list of
messages, a ``PromptValue``, or a dict with ``question`` or ``messages`` (or, inside
the package, a ``Question`` already read)."""


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


def check_messages(messages: Any, where: str | None = None) -> Sequence[BaseMessage]:
    """Return ``messages`` if it is a list of chat messages whose text is valid Unicode.

    ``where`` is the list's path in a request (``"input.messages"``), for the message.

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
        label = f"message {index}'s content" if where is None else f"{where}[{index}].content"
        for text in _strings(message.content):
            check_text(text, label)
    return messages


def _strings(value: Any) -> Iterator[str]:
    """Yield every string in a message's content (a string, or a list of blocks)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _field(where: str, key: str) -> str:
    """The path of ``key`` in the object at ``where`` (``""``: the request body)."""
    return f"{where}.{key}" if where else key


def _mapping_messages(value: Mapping[str, Any], where: str | None) -> list[BaseMessage]:
    question = value.get("question")
    if question is not None and not isinstance(question, str):
        msg = f"'question' must be a string, not a {type(question).__name__}"
        raise TypeError(msg)
    messages = value.get("messages")
    if messages is not None:
        check_messages(messages, None if where is None else _field(where, "messages"))
    if isinstance(question, str):
        check_text(question, "the question" if where is None else _field(where, "question"))
        return [*(messages or []), HumanMessage(content=question)]
    if messages is None:
        msg = "a dict input needs a 'question' string or a 'messages' list"
        raise ValueError(msg)
    return list(messages)


def _conversation(value: Any, where: str | None) -> list[BaseMessage]:
    """The messages of ``value``, each string in them checked once."""
    if isinstance(value, str):
        return [HumanMessage(content=check_text(value, where or "the question"))]
    if isinstance(value, Mapping):
        return _mapping_messages(value, where)
    if isinstance(value, PromptValue):
        messages = value.to_messages()
    elif isinstance(value, BaseMessage):
        messages = [value]
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        messages = list(value)
    else:
        msg = (
            f"cannot route a {type(value).__name__}: pass a string, a chat message, a list "
            "of messages, a PromptValue, or a dict with 'question' or 'messages'"
        )
        raise TypeError(msg)
    check_messages(messages, where)
    return messages


def read_question(value: Any, *, question_last: bool = True, where: str | None = None) -> Question:
    """Read a router input once: the one check every entry point applies to a question.

    A string becomes a human message; a dict's ``question`` is appended as a human turn
    after its ``messages``. Every string is checked for bad Unicode once, and the
    question turn's text is stripped once; what comes back is trusted from then on.

    Args:
        value: A string, a chat message, a list of messages, a ``PromptValue``, or a
            mapping with a ``question`` (string) or ``messages`` (list) key, and
            optionally a ``pinned_expert`` (the expert that answers, unclassified).
        question_last: Require the conversation to end in the human turn it asks (the
            router answers that turn); ``False`` takes any conversation holding a human
            message (the classifier reads the last one).
        where: The input's path in a request (``"input"``; ``""``: the body itself),
            to name a string with bad Unicode by its field
            (``"input.messages[0].content"``).

    Returns:
        The checked question.

    Raises:
        TypeError: If ``value`` is of a kind the router does not accept.
        ValueError: If there is no question, or its text is empty or not valid Unicode.

    Example:
        ```python
        read_question({"question": "미분이란?"}).messages  # [HumanMessage("미분이란?")]
        ```
    """
    pin = value.get("pinned_expert") if isinstance(value, Mapping) else None
    if pin is not None and not isinstance(pin, str):
        msg = f"'pinned_expert' must be an expert's name, not a {type(pin).__name__}"
        raise TypeError(msg)
    messages = _conversation(value, where)
    index = last_human_index(messages)
    if index is None and len(messages) == 1 and not question_last:
        index = 0  # for the classifier, one message is the question whatever its type
    if question_last and index != len(messages) - 1:
        raise ValueError(NO_QUESTION)
    if index is None:
        msg = "the messages contain no human message to classify"
        raise ValueError(msg)
    text = require_text(message_text(messages[index]))
    return Question(messages, index, text, pin)


def take_question(value: Any, *, question_last: bool = True) -> Question:
    """``value`` when it is a ``Question`` already read under the rule, else read it.

    Raises:
        TypeError: As ``read_question``.
        ValueError: As ``read_question``; for a ``Question`` whose conversation goes on
            after its question when ``question_last`` asks for the question last.
    """
    if not isinstance(value, Question):
        return read_question(value, question_last=question_last)
    if question_last and value.index != len(value.messages) - 1:
        raise ValueError(NO_QUESTION)
    return value


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

"""Turn the inputs a LangChain user passes into the question text to classify."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.prompt_values import PromptValue

from langchain_domain_router._text import require_text

RouterInput = str | BaseMessage | Sequence[BaseMessage] | PromptValue | Mapping[str, Any]
"""What the classifier and the router accept: a string, a chat message, a list of
messages, a ``PromptValue``, or a dict with ``question`` or ``messages``."""


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


def _from_messages(messages: Sequence[Any], context_turns: int) -> str:
    if not all(isinstance(m, BaseMessage) for m in messages):
        msg = "a list input must contain only chat messages (BaseMessage instances)"
        raise TypeError(msg)
    index = last_human_index(messages)
    if index is None:
        msg = "the messages contain no human message to classify"
        raise ValueError(msg)
    humans = [m for m in messages[: index + 1] if isinstance(m, HumanMessage)]
    return "\n".join(message_text(m) for m in humans[-(context_turns + 1) :])


def extract_question(value: Any, *, context_turns: int = 0) -> str:
    """Return the question text in ``value``.

    For messages, the last human message is the question; ``context_turns`` earlier
    human turns are prepended (newline-separated) so a short follow-up keeps its topic.

    Args:
        value: A string, a chat message, a list of messages, a ``PromptValue``, or a
            mapping with a ``question`` (string) or ``messages`` (list) key.
        context_turns: How many earlier human turns to prepend.

    Returns:
        The text, stripped of surrounding whitespace.

    Raises:
        TypeError: If ``value`` is of a kind the router does not accept.
        ValueError: If there is no text to classify.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, PromptValue):
        text = _from_messages(value.to_messages(), context_turns)
    elif isinstance(value, BaseMessage):
        text = message_text(value)
    elif isinstance(value, Mapping):
        if isinstance(value.get("question"), str):
            text = value["question"]
        elif isinstance(value.get("messages"), Sequence):
            text = _from_messages(value["messages"], context_turns)
        else:
            msg = "a dict input needs a 'question' string or a 'messages' list"
            raise ValueError(msg)
    elif isinstance(value, Sequence):
        text = _from_messages(value, context_turns)
    else:
        msg = (
            f"cannot route a {type(value).__name__}: pass a string, a chat message, a list "
            "of messages, a PromptValue, or a dict with 'question' or 'messages'"
        )
        raise TypeError(msg)
    return require_text(text)

"""Turn the routing graph's stream into the answer's chunks: never lost, never mixed.

The graph streams the tokens of every expert attempt, including attempts that fail half
way (then retried, or handed to ``general``), and nothing at all for an expert that does
not stream. ``AnswerStream`` watches the node updates to learn which message is the
answer and reconciles what it passed on with it, so the chunks always add up to the
text ``invoke`` returns:

- ``buffer="attempt"`` (default): an attempt's tokens are held until the attempt has
  succeeded, then passed on; a failed attempt's tokens are dropped.
- ``buffer="off"``: tokens are passed on as they arrive; when an attempt is abandoned,
  a chunk whose ``response_metadata`` holds ``{"stream_reset": True}`` tells the client
  to discard the text received so far, and the replacement answer follows.

A non-streaming expert's message comes as one chunk. The last chunk carries the routing
record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk

from langchain_domain_router.graph.experts import ATTEMPT_KEY
from langchain_domain_router.schema import CLASSIFY_NODE, REASON_FAN_OUT

STREAM_RESET = "stream_reset"
"""``response_metadata`` key of the chunk that says: discard the text streamed so far."""


def reset_chunk() -> AIMessageChunk:
    """The chunk that tells a client to discard the text it has received so far."""
    return AIMessageChunk(content="", response_metadata={STREAM_RESET: True})


def whole_chunk(message: AIMessage) -> AIMessageChunk:
    """A whole answer as one chunk (for experts that do not stream)."""
    metadata = {k: v for k, v in message.response_metadata.items() if k != "routing"}
    calls = [
        tool_call_chunk(name=call["name"], args=json.dumps(call["args"]), id=call["id"], index=i)
        for i, call in enumerate(message.tool_calls)
    ]
    return AIMessageChunk(
        content=message.content,
        id=message.id,
        response_metadata=metadata,
        usage_metadata=message.usage_metadata,
        tool_call_chunks=calls,
    )


def _text(chunks: Iterable[AIMessageChunk]) -> str:
    return "".join(str(chunk.text) for chunk in chunks)


class AnswerStream:
    """Picks the answer's chunks out of the graph's ``messages`` and ``updates`` streams.

    Args:
        answer_nodes: The expert nodes whose model tokens may be the answer.
        buffer: ``"attempt"`` holds each attempt's tokens until it succeeds; ``"off"``
            streams them live and sends a reset chunk when an attempt is abandoned.
    """

    def __init__(self, answer_nodes: frozenset[str], *, buffer: str = "attempt") -> None:
        self.answer_nodes = answer_nodes
        self.buffer = buffer == "attempt"
        self.fan_out = False
        self.question: str | None = None
        self.answer: AIMessage | None = None
        self.held: dict[str, list[AIMessageChunk]] = {}
        self.live_id: str | None = None
        self.live: list[AIMessageChunk] = []
        self.abandoned: set[str] = set()

    def feed(self, mode: str, chunk: Any) -> list[AIMessageChunk]:
        """Take one ``(mode, chunk)`` item of the graph stream; return what to pass on."""
        if mode == "updates":
            return self._updates(chunk)
        message, metadata = chunk
        if (
            self.fan_out  # two experts answer side by side: only the merged text counts
            or self.answer is not None
            or not isinstance(message, AIMessageChunk)
            or metadata.get("langgraph_node") not in self.answer_nodes
        ):
            return []
        # One key per model call: message ids may change within a call (a provider id,
        # then the run id on the closing chunk), so the expert call's attempt number leads.
        attempt = str(
            metadata.get(ATTEMPT_KEY, metadata.get("langgraph_checkpoint_ns", message.id))
        )
        if self.buffer:
            self.held.setdefault(attempt, []).append(message)
            return []
        if attempt in self.abandoned:
            return []  # a timed-out attempt still producing tokens in its thread
        out: list[AIMessageChunk] = []
        if attempt != self.live_id:
            if self.live_id is not None:
                self.abandoned.add(self.live_id)
            out += self._reset()
            self.live_id = attempt
        self.live.append(message)
        return [*out, message]

    def _reset(self) -> list[AIMessageChunk]:
        sent, self.live = self.live, []
        return [reset_chunk()] if _text(sent) else []

    def _updates(self, updates: Mapping[str, Any]) -> list[AIMessageChunk]:
        out: list[AIMessageChunk] = []
        for node, update in updates.items():
            if not isinstance(update, Mapping):
                continue
            if node == CLASSIFY_NODE:
                self.fan_out = (update.get("routing") or {}).get("reason") == REASON_FAN_OUT
                self.question = update.get("question")
            elif update.get("answer") is not None and update.get("messages"):
                out += self._deliver(update["messages"][-1])
        return out

    def _deliver(self, answer: AIMessage) -> list[AIMessageChunk]:
        """The answer is known: pass on its held tokens, or correct what was sent."""
        self.answer = answer
        text = str(answer.text)
        if self.buffer:
            # The answering attempt is the latest whose tokens make the answer's text.
            attempts, self.held = list(self.held.values()), {}
            chunks = next((c for c in reversed(attempts) if _text(c) == text), None)
            return chunks if chunks and text and not answer.tool_calls else [whole_chunk(answer)]
        if _text(self.live) == text:
            return []
        return [*self._reset(), whole_chunk(answer)]

    def answer_state(self) -> dict[str, Any]:
        """The answer and question, as ``DomainRouter`` reads them from a final state.

        Raises:
            RuntimeError: If the graph ended without an answer.
        """
        if self.answer is None:
            msg = "the routing graph ended without an answer"
            raise RuntimeError(msg)
        return {"messages": [self.answer], "question": self.question}

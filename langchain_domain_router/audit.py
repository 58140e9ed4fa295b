"""An audit trail of routing decisions: one JSON line per answered question.

The routing graph sends a ``routing_complete`` custom event with the final routing record;
``RoutingEventHandler`` turns it into a callback, and ``AuditCallbackHandler`` writes it
to a sink such as ``JsonlAuditSink``. Records hold no prompt text unless asked for, and
secrets are scrubbed from every string in them.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from typing_extensions import override

from langchain_domain_router._redact import redact as redact  # re-exported
from langchain_domain_router._redact import redact_value
from langchain_domain_router.schema import ROUTING_COMPLETE_EVENT

logger = logging.getLogger(__name__)

AUDIT_FIELDS = (
    "request_id",
    "domain",
    "score",
    "margin",
    "supercategory",
    "expert",
    "reason",
    "explanation",
    "model",
    "offline",
    "failed_expert",
    "error",
    "classifier_latency_ms",
    "expert_latency_ms",
    "input_tokens",
    "output_tokens",
    "estimated_cost_usd",
    "model_version",
)
"""The routing-record fields an audit line keeps (plus ``timestamp``, ``scores`` and,
when enabled, ``question``). An allow-list: fields added to the record later stay out
until someone decides they belong in an audit log."""


def audit_record(
    routing: Mapping[str, Any],
    *,
    question: str | None = None,
    secrets: Iterable[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build one audit line from a routing record.

    Args:
        routing: A ``RoutingDecision`` as a dict (the ``routing_complete`` payload).
        question: The question text, to include only when prompt logging is enabled.
        secrets: Exact values to scrub from every string.
        extra: More fields to add (e.g. an HTTP request id).

    Returns:
        A JSON-ready dict: ``timestamp``, the ``AUDIT_FIELDS``, ``scores`` (the top-k
        domains and probabilities), and ``question`` when given.
    """
    record: dict[str, Any] = {"timestamp": datetime.now(UTC).isoformat(timespec="milliseconds")}
    record.update({field: routing.get(field) for field in AUDIT_FIELDS})
    record["scores"] = {item["label"]: item["score"] for item in routing.get("top_k") or []}
    if question is not None:
        record["question"] = question
    record.update(extra or {})
    return dict(redact_value(record, secrets))


@runtime_checkable
class AuditSink(Protocol):
    """Where audit records go: anything with ``write(record)``.

    Example:
        ```python
        class LoggingSink:
            def write(self, record):
                logging.getLogger("audit").info(json.dumps(record))

        handler = AuditCallbackHandler(LoggingSink())
        ```
    """

    def write(self, record: Mapping[str, Any]) -> None:
        """Store one record."""


class JsonlAuditSink:
    """Append each record as one JSON line to a file (or ``"-"`` for standard output).

    Writes are serialised with a lock and flushed per line, so lines from concurrent
    requests never interleave. Several processes may share one file: each line is
    written with a single ``write`` call in append mode.

    Example:
        ```python
        from langchain_domain_router.audit import AuditCallbackHandler, JsonlAuditSink

        handler = AuditCallbackHandler(JsonlAuditSink("audit.jsonl"))
        router.invoke("부가가치세 신고 기한은?", config={"callbacks": [handler]})
        ```
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._stream: IO[str] | None = None

    def _open(self) -> IO[str]:
        if self._stream is None:
            if self.path == "-":
                self._stream = sys.stdout
            else:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        return self._stream

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one JSON line."""
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            stream = self._open()
            stream.write(line)
            stream.flush()

    def close(self) -> None:
        """Close the file (standard output stays open)."""
        with self._lock:
            if self._stream is not None and self._stream is not sys.stdout:
                self._stream.close()
            self._stream = None


class RoutingEventHandler(BaseCallbackHandler):
    """Base callback handler that calls ``on_routing_complete`` once per answer.

    It listens for the graph's ``routing_complete`` custom event, so it works on any
    chain that contains the router: attach it with ``config={"callbacks": [handler]}``.
    With ``capture_question`` it also remembers the question each expert node received.
    It runs inline (in async code, on the event loop) and skips model, retriever, agent
    and retry events: keep ``on_routing_complete`` quick, or hand slow work to a queue.

    Example:
        ```python
        class Printer(RoutingEventHandler):
            def on_routing_complete(self, routing, *, question, metadata):
                print(routing["expert"], routing["reason"])
        ```
    """

    raise_error = False
    capture_question = False
    run_inline = True
    """Called on the event loop, not through an executor: one thread hop per callback
    event of every run was most of the cost of listening."""

    def __init__(self) -> None:
        self._questions: dict[UUID, str] = {}

    @property
    def ignore_chain(self) -> bool:
        """Chain runs only matter for remembering questions."""
        return not self.capture_question

    # Only the custom events (and chain inputs, for questions) matter: the callback
    # manager skips every handler call of these kinds.
    ignore_llm = ignore_chat_model = ignore_retriever = ignore_agent = ignore_retry = True

    def on_routing_complete(
        self, routing: dict[str, Any], *, question: str | None, metadata: Mapping[str, Any]
    ) -> None:
        """Handle one final routing record (override this)."""

    @override
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any] | Any,
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        # Expert nodes receive the graph state, whose ``question`` the classifier set.
        if self.capture_question and isinstance(inputs, Mapping):
            question = inputs.get("question")
            if isinstance(question, str) and inputs.get("routing"):
                self._questions[run_id] = question

    @override
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._questions.pop(run_id, None)

    @override
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._questions.pop(run_id, None)

    @override
    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if name != ROUTING_COMPLETE_EVENT or not isinstance(data, Mapping):
            return
        try:
            self.on_routing_complete(
                dict(data), question=self._questions.get(run_id), metadata=metadata or {}
            )
        except Exception:  # an audit or metrics failure must never fail the answer
            logger.exception("%s could not record a routing decision", type(self).__name__)


class AuditCallbackHandler(RoutingEventHandler):
    """Write every routing decision the router makes as one audit record.

    Records carry the timestamp, request id, domain and scores, expert, reason,
    latencies, token usage and estimated cost. The question text is left out unless
    ``include_prompt`` is true; API keys never appear (see ``redact``).

    Example:
        ```python
        from langchain_domain_router import DomainRouter
        from langchain_domain_router.audit import AuditCallbackHandler, JsonlAuditSink

        audit = AuditCallbackHandler(JsonlAuditSink("/var/log/router/audit.jsonl"))
        chain = prompt | DomainRouter.from_config("router.yaml")
        chain.invoke({"question": "근저당권이란?"}, config={"callbacks": [audit]})
        ```
    """

    def __init__(
        self,
        sink: AuditSink | str | Path,
        *,
        include_prompt: bool = False,
        secrets: Iterable[str] = (),
    ) -> None:
        """Create the handler.

        Args:
            sink: An ``AuditSink``, or a path (``"-"`` for standard output) for a
                ``JsonlAuditSink``.
            include_prompt: Also record the question text.
            secrets: Exact values to scrub besides secret-named environment variables.
        """
        super().__init__()
        self.sink = sink if isinstance(sink, AuditSink) else JsonlAuditSink(sink)
        self.capture_question = include_prompt
        self.secrets = frozenset(secrets)

    @override
    def on_routing_complete(
        self, routing: dict[str, Any], *, question: str | None, metadata: Mapping[str, Any]
    ) -> None:
        # The server tags each request's runs with its HTTP request id (X-Request-ID).
        request_id = metadata.get("http_request_id")
        record = audit_record(
            routing,
            question=question if self.capture_question else None,
            secrets=self.secrets,
            extra={"http_request_id": request_id} if request_id else None,
        )
        self.sink.write(record)

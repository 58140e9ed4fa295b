"""Idempotent ``/router/invoke``: a request sent again with its ``X-Request-ID`` is answered once.

A client that loses its answer (a replica killed mid-request, a 502 from the balancer)
sends the request again with the same ``X-Request-ID``. If that request was answered,
the stored answer comes back (header ``x-domain-router-replayed: true``) and nothing
runs again: no expert call, no audit line, no second turn in the thread. Answers are
kept where the replicas share them: a table in the PostgreSQL database of a
``postgres`` checkpointer, else in the process (bounded).

A thread's own checkpoints say the rest, written in the same transactions as its
turns: each checkpoint carries the ``http_request_id`` of the run that wrote it. A
turn whose run completed but whose answer never reached the store is answered from
the thread; a turn whose run broke off is run again from the state before it, so the
thread holds the turn once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig

from langchain_domain_router.server import _asgi
from langchain_domain_router.server._requests import DECODED_BODY

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

REQUEST_ID_HEADER = b"x-request-id"
REPLAYED_HEADER = "x-domain-router-replayed"
MAX_REQUEST_ID_CHARS = 128
"""Longer ids are cut to this length, in the run metadata and here alike."""
_CREATE = (
    "CREATE TABLE IF NOT EXISTS domain_router_answers (request_id text PRIMARY KEY, "
    "fingerprint text NOT NULL, body bytea NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT now())"
)
_EXPIRE = "DELETE FROM domain_router_answers WHERE created_at < now() - interval '1 day'"
_SELECT = "SELECT fingerprint, body FROM domain_router_answers WHERE request_id = %s"
_INSERT = (
    "INSERT INTO domain_router_answers (request_id, fingerprint, body) VALUES (%s, %s, %s) "
    "ON CONFLICT (request_id) DO NOTHING"
)


def request_id_of(headers: Any) -> str | None:
    """The caller's ``X-Request-ID`` from ASGI ``headers``, cut to its stored length."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER and value:
            return str(value.decode("latin-1"))[:MAX_REQUEST_ID_CHARS]
    return None


@dataclass(frozen=True)
class StoredAnswer:
    """The answer to one request, and a digest of the request it answered."""

    fingerprint: str
    body: bytes


class AnswerStore(Protocol):
    """Where answers wait for a repeated request."""

    async def get(self, request_id: str) -> StoredAnswer | None:
        """The answer stored under ``request_id``, if any."""

    async def put(self, request_id: str, answer: StoredAnswer) -> None:
        """Store ``answer``; the first answer stored under an id stays."""


@dataclass
class MemoryAnswerStore:
    """The last ``max_entries`` answers of this process.

    Example:
        ```python
        store = MemoryAnswerStore(max_entries=1_000)
        ```
    """

    max_entries: int = 10_000
    _answers: OrderedDict[str, StoredAnswer] = field(default_factory=OrderedDict)

    async def get(self, request_id: str) -> StoredAnswer | None:
        """The answer stored under ``request_id``, if any."""
        return self._answers.get(request_id)

    async def put(self, request_id: str, answer: StoredAnswer) -> None:
        """Store ``answer``, forgetting the oldest beyond ``max_entries``."""
        self._answers.setdefault(request_id, answer)
        while len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)


@dataclass
class PostgresAnswerStore:
    """Answers in a table of the checkpointer's database, shared by every replica.

    Rows older than a day are deleted when a replica starts, and every
    ``expire_every`` answers it stores.

    Example:
        ```python
        store = PostgresAnswerStore(pool)
        await store.setup()
        ```
    """

    conn: AsyncConnectionPool[Any] | AsyncConnection[Any]
    """The checkpointer's pool (or connection)."""
    expire_every: int = 1_000
    """Stored answers between two deletions of the expired ones."""
    _stored: int = 0

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        from psycopg_pool import AsyncConnectionPool

        if isinstance(self.conn, AsyncConnectionPool):
            async with self.conn.connection() as conn:
                yield conn
        else:
            yield self.conn

    async def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        from psycopg.rows import tuple_row

        async with (
            self._connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row) as cursor,
        ):
            await cursor.execute(sql.encode(), params)  # the module's fixed statements
            return await cursor.fetchone() if cursor.description else None

    async def setup(self) -> None:
        """Create the table when missing, and drop answers older than a day."""
        await self._execute(_CREATE)
        await self._execute(_EXPIRE)

    async def get(self, request_id: str) -> StoredAnswer | None:
        """The answer stored under ``request_id``, if any."""
        row = await self._execute(_SELECT, (request_id,))
        return None if row is None else StoredAnswer(row[0], bytes(row[1]))

    async def put(self, request_id: str, answer: StoredAnswer) -> None:
        """Store ``answer``; a row already there stays."""
        await self._execute(_INSERT, (request_id, answer.fingerprint, answer.body))
        self._stored += 1
        if self._stored % self.expire_every == 0:
            await self._execute(_EXPIRE)


async def open_answer_store(checkpointer: BaseCheckpointSaver | bool | None) -> AnswerStore:
    """A shared store in a PostgreSQL checkpointer's database, else one in this process."""
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        return MemoryAnswerStore()
    if isinstance(checkpointer, AsyncPostgresSaver):
        store = PostgresAnswerStore(checkpointer.conn)
        await store.setup()
        return store
    return MemoryAnswerStore()


def invoke_body(message: AIMessage) -> bytes:
    """The body LangServe's ``/invoke`` answers ``message`` with."""
    from langserve.serialization import WellKnownLCSerializer

    output = WellKnownLCSerializer().dumpd(message)
    metadata = {"run_id": str(uuid.uuid4()), "feedback_tokens": []}
    return json.dumps({"output": output, "callback_events": [], "metadata": metadata}).encode()


@dataclass(frozen=True)
class EarlierAttempt:
    """What a thread's checkpoints say about an earlier run of the same request."""

    answer: AIMessage | None = None
    """The answer of a run that completed."""
    restart_from: str | None = None
    """For a run that broke off, the checkpoint before it (``None``: the thread's start)."""


async def earlier_attempt(
    graph: CompiledStateGraph, thread_id: str, request_id: str
) -> EarlierAttempt | None:
    """Look in thread ``thread_id`` for runs of ``request_id``.

    Returns:
        ``None`` when no run of that request is in the thread (or the thread has moved
        on past a broken-off one); else its answer, or where to run it again from.
    """
    saver = graph.checkpointer
    if saver is None or isinstance(saver, bool):
        return None
    thread: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    runs = [item async for item in saver.alist(thread, filter={"http_request_id": request_id})]
    if not runs:
        return None
    latest = await graph.aget_state(runs[0].config)
    messages = latest.values.get("messages") or []
    if not latest.next and messages and isinstance(messages[-1], AIMessage):
        return EarlierAttempt(answer=messages[-1])
    head = await saver.aget_tuple(thread)
    if head is None or head.checkpoint["id"] != runs[0].checkpoint["id"]:
        return None
    parent = runs[-1].parent_config
    return EarlierAttempt(restart_from=parent["configurable"]["checkpoint_id"] if parent else None)


def fingerprint(payload: Any) -> str:
    """A digest of what a request asks: its input and config."""
    asked = {"input": payload.get("input"), "config": payload.get("config")}
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


def _thread_id(payload: Any) -> str | None:
    """The request's ``thread_id``, unless it also names a ``checkpoint_id`` of its own."""
    config = payload.get("config")
    configurable = config.get("configurable") if isinstance(config, dict) else None
    if not isinstance(configurable, dict) or configurable.get("checkpoint_id"):
        return None
    thread_id = configurable.get("thread_id")
    return thread_id if isinstance(thread_id, str) and thread_id else None


@dataclass
class Idempotency:
    """The answer store (opened with the app) and the graph whose threads it checks."""

    graph: CompiledStateGraph
    store: AnswerStore = field(default_factory=MemoryAnswerStore)


class IdempotencyMiddleware:
    """Answer a repeated ``POST <path>`` (same ``X-Request-ID``) without running it again.

    A request id reused for a different request is 409. Requests without the header,
    and other paths, pass through untouched.
    """

    def __init__(self, app: _asgi.ASGIApp, path: str, idempotency: Idempotency) -> None:
        self.app = app
        self.path = path
        self.idempotency = idempotency
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: Counter[str] = Counter()

    async def __call__(self, scope: _asgi.Scope, receive: _asgi.Receive, send: _asgi.Send) -> None:
        request_id = request_id_of(scope.get("headers", []))
        if scope["type"] != "http" or scope["method"] != "POST" or request_id is None:
            await self.app(scope, receive, send)
            return
        if scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        # One run at a time per id in this process: a resend racing its original waits.
        lock = self._locks.setdefault(request_id, asyncio.Lock())
        self._users[request_id] += 1
        try:
            async with lock:
                await self._answer(scope, receive, send, request_id)
        finally:
            self._users[request_id] -= 1
            if not self._users[request_id]:
                del self._users[request_id], self._locks[request_id]

    async def _answer(
        self, scope: _asgi.Scope, receive: _asgi.Receive, send: _asgi.Send, request_id: str
    ) -> None:
        body = await _read_body(receive)
        payload = scope.get(DECODED_BODY)  # the limits middleware decoded it
        if payload is None:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
        if not isinstance(payload, dict):  # LangServe answers it
            await self.app(scope, _asgi.replay(body, receive), send)
            return
        digest = fingerprint(payload)
        store = self.idempotency.store
        stored = await store.get(request_id)
        if stored is None and (thread_id := _thread_id(payload)) is not None:
            found = await earlier_attempt(self.idempotency.graph, thread_id, request_id)
            if found is not None and found.answer is not None:
                stored = StoredAnswer(digest, invoke_body(found.answer))
                await store.put(request_id, stored)
            elif found is not None:
                body = await self._restart(payload, thread_id, found.restart_from)
        if stored is not None:
            await _send_stored(send, stored, digest, request_id)
            return
        storing = _Storing(send, store, request_id, digest)
        await self.app(scope, _asgi.replay(body, receive), storing)

    async def _restart(self, payload: dict[str, Any], thread_id: str, parent: str | None) -> bytes:
        """The request's body, set to run from checkpoint ``parent`` of its thread.

        The decoded body shares its ``config`` with the body the routes take (inputs
        read), so both run from ``parent``.
        """
        if parent is None:
            saver = self.idempotency.graph.checkpointer
            await saver.adelete_thread(thread_id)  # type: ignore[union-attr]
        else:
            payload["config"]["configurable"]["checkpoint_id"] = parent
        return json.dumps(payload).encode()


async def _read_body(receive: _asgi.Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return b"".join(chunks)


async def _send_stored(
    send: _asgi.Send, stored: StoredAnswer, digest: str, request_id: str
) -> None:
    if stored.fingerprint != digest:
        detail = (
            f"X-Request-ID {request_id!r} was already used for a different request: "
            "send each new request with a new id"
        )
        await _asgi.send_json(send, 409, {"detail": detail}, {})
        return
    headers = [(b"content-type", b"application/json"), (REPLAYED_HEADER.encode(), b"true")]
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


class _Storing:
    """A ``send`` that stores a 200 answer before the client gets it.

    Stored first, so an answer a client received is always there for its resend.
    """

    def __init__(self, send: _asgi.Send, store: AnswerStore, request_id: str, digest: str) -> None:
        self._send = send
        self._store = store
        self._request_id = request_id
        self._digest = digest
        self._start: _asgi.Message | None = None
        self._chunks: list[bytes] = []

    async def __call__(self, message: _asgi.Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 200:
            self._start = message
            return
        if self._start is None or message["type"] != "http.response.body":
            await self._send(message)
            return
        self._chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self._chunks)
        await self._store.put(self._request_id, StoredAnswer(self._digest, body))
        await self._send(self._start)
        await self._send({"type": "http.response.body", "body": body})

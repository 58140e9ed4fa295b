"""An ASGI middleware that enforces the server's limits before a runnable sees a request.

Body size (413), input size and batch size (422), a bounded number of requests in
flight (others queue, then 503) and a per-request timeout (504) apply to the runnable
endpoints; health checks and metrics are never queued behind them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from langchain_domain_router.server._metrics import RouterMetrics
from langchain_domain_router.server._settings import ServerSettings

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_INPUT_ENDPOINTS = {"invoke": "input", "stream": "input", "stream_log": "input"}
_INPUT_ENDPOINTS |= {"stream_events": "input", "batch": "inputs"}


class LimitError(Exception):
    """A request broke a limit: it is answered with ``status`` and ``detail``."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def text_chars(value: Any) -> int:
    """Count the characters of every string in a decoded JSON value."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(text_chars(item) for item in value.values())
    if isinstance(value, list):
        return sum(text_chars(item) for item in value)
    return 0


async def _send_json(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(key.encode(), value.encode()) for key, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class LimitsMiddleware:
    """Apply ``ServerSettings`` limits to the runnable endpoints and count every request."""

    def __init__(self, app: ASGIApp, settings: ServerSettings, metrics: RouterMetrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.slots = asyncio.Semaphore(settings.max_concurrency)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what a client sees if the app dies before answering
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        start = time.perf_counter()
        endpoint = scope["path"].rstrip("/").rsplit("/", 1)[-1]
        try:
            if scope["method"] == "POST" and endpoint in _INPUT_ENDPOINTS:
                await self._guarded(scope, receive, tracked_send, _INPUT_ENDPOINTS[endpoint])
            else:
                await self.app(scope, receive, tracked_send)
        except LimitError as exc:
            self.metrics.rejected.labels(reason=exc.reason).inc()
            if started:
                logger.warning("%s after the answer started: %s", exc.reason, exc.detail)
            else:
                retry = {"retry-after": "1"} if exc.status == 503 else {}
                await _send_json(tracked_send, exc.status, exc.detail, retry)
        finally:
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - start)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                msg = f"request body of {int(value)} bytes exceeds the {limit}-byte limit"
                raise LimitError(413, "body_too_large", msg)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:  # a chunked body has no content-length to check up front
                msg = f"request body exceeds the {limit}-byte limit"
                raise LimitError(413, "body_too_large", msg)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _check_inputs(self, body: bytes, key: str) -> None:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return  # malformed JSON: LangServe answers 422 with its own message
        if not isinstance(payload, dict):
            return
        inputs = payload.get(key)
        if key == "inputs":
            if not isinstance(inputs, list):
                return
            limit = self.settings.max_batch_size
            if len(inputs) > limit:
                msg = f"batch of {len(inputs)} inputs exceeds max_batch_size {limit}"
                raise LimitError(422, "batch_too_large", msg)
        else:
            inputs = [inputs]
        limit = self.settings.max_input_chars
        for index, value in enumerate(inputs):
            chars = text_chars(value)
            if chars > limit:
                msg = f"input {index} holds {chars} characters; the limit is {limit}"
                raise LimitError(422, "input_too_long", msg)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        body = await self._read_body(scope, receive)
        self._check_inputs(body, key)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # later reads watch for the client disconnecting
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            await asyncio.wait_for(self.slots.acquire(), timeout=self.settings.queue_timeout_s)
        except TimeoutError:
            msg = f"server busy: {self.settings.max_concurrency} requests in flight; retry later"
            raise LimitError(503, "overloaded", msg) from None
        self.metrics.in_flight.inc()
        try:
            async with asyncio.timeout(self.settings.request_timeout_s):
                await self.app(scope, replay, send)
        except TimeoutError:
            msg = f"request took longer than {self.settings.request_timeout_s:g}s"
            raise LimitError(504, "timeout", msg) from None
        finally:
            self.metrics.in_flight.dec()
            self.slots.release()

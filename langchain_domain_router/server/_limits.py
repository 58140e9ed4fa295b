"""An ASGI middleware that enforces the server's limits before a runnable sees a request.

Body size (413), strict UTF-8 (400), JSON nesting depth, unpaired surrogates, input
validity, input size and batch size (422), a bounded number of requests in flight
(others queue, then 503) and a per-request timeout (504) apply to the runnable
endpoints; health checks and metrics are never queued behind them. A ``/batch`` with
some invalid inputs is answered per item (see ``_batch.py``), and a stream that fails
after its first byte ends with LangServe's ``event: error`` instead of a cut connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from langchain_domain_router._inputs import check_text
from langchain_domain_router.server import _asgi
from langchain_domain_router.server._batch import answer_batch
from langchain_domain_router.server._metrics import RouterMetrics
from langchain_domain_router.server._requests import CHECKED_BODY, DECODED_BODY
from langchain_domain_router.server._settings import ServerSettings

logger = logging.getLogger(__name__)

_INPUT_ENDPOINTS = {"invoke": "input", "stream": "input", "stream_log": "input"}
_INPUT_ENDPOINTS |= {"stream_events": "input", "batch": "inputs"}
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
InputValidator = Callable[[Any, str], Any]
"""Reads one input (``value``, ``path``) into what the runnable takes; raises
``ValueError`` naming the field."""


class LimitError(Exception):
    """A request broke a limit: it is answered with ``status`` and ``detail``."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def json_depth(text: str) -> int:
    """Return how deeply arrays and objects nest in JSON ``text``, without parsing it.

    Parsing first is what must not happen: a body of 100,000 ``[`` makes the JSON
    decoder recurse past Python's limit.
    """
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def decode_json(body: bytes, max_depth: int) -> Any:
    """Decode a request body: strict UTF-8, at most ``max_depth`` levels, valid JSON.

    Raises:
        LimitError: 400 for invalid UTF-8; 422 for too deep or malformed JSON.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"request body is not valid UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}"
        raise LimitError(400, "invalid_utf8", msg) from None
    depth = json_depth(text)
    if depth > max_depth:
        msg = f"request body nests JSON {depth} levels deep; the limit is {max_depth}"
        raise LimitError(422, "too_deep", msg)
    try:
        return json.loads(text)
    except ValueError as exc:
        msg = f"request body is not valid JSON: {exc}"
        raise LimitError(422, "invalid_json", msg) from None


def unicode_problem(value: Any, where: str) -> LimitError | None:
    r"""The first string (or key) in decoded JSON that holds an unpaired surrogate.

    Strict UTF-8 decoding lets none through; JSON escapes such as ``"\ud800"`` can.
    """
    return _first_problem(_strings(value, where))


def _first_problem(strings: Iterator[tuple[str, str]]) -> LimitError | None:
    for path, text in strings:
        try:
            # backslashreplace: the path itself may hold the surrogate (a key)
            check_text(text, path[:200].encode("utf-8", "backslashreplace").decode() or "body")
        except ValueError as exc:
            return LimitError(422, "invalid_unicode", str(exc))
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Yield ``(path, text)`` for every key and string value in decoded JSON."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}" if path else key, key
            yield from _strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _unread_strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """The strings of a JSON input that reading its question does not check.

    ``read_question`` checks the question and every message's content; the keys and
    the messages' other fields are checked here, so each string is checked once.
    """
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _message_strings(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}"
            yield path, key
            if key == "messages" and isinstance(item, list):
                yield from _unread_strings(item, path)
            elif key != "question" or not isinstance(item, str):
                yield from _strings(item, path)


def _message_strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """A JSON chat message's strings besides its content (``read_question`` reads that)."""
    if not isinstance(value, dict):
        yield from _strings(value, where)
        return
    for key, item in value.items():
        yield f"{where}.{key}", key
        if key != "content":
            yield from _strings(item, f"{where}.{key}")


def text_chars(value: Any) -> int:
    """Count the characters of every string in a decoded JSON value."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(text_chars(item) for item in value.values())
    if isinstance(value, list):
        return sum(text_chars(item) for item in value)
    return 0


class _Response:
    """Tracks what has been sent, so a failure after the first byte can end cleanly.

    LangServe answers any failure inside a stream, a timeout included, with a generic
    ``500`` error event and then raises. That event is held back until the outcome is
    known, so the client learns the real status (504 for a timeout) from one event.
    """

    def __init__(self, send: _asgi.Send) -> None:
        self._send = send
        self.status = 500  # what a client sees if the app dies before answering
        self.started = self.finished = self.event_stream = False
        self.held: _asgi.Message | None = None

    async def send(self, message: _asgi.Message) -> None:
        if message["type"] == "http.response.start":
            self.status, self.started = message["status"], True
            headers = dict(message.get("headers") or [])
            self.event_stream = headers.get(b"content-type", b"").startswith(b"text/event-stream")
        elif message["type"] == "http.response.body":
            if self.event_stream and b"event: error" in message.get("body", b""):
                self.held = message
                return
            if self.held is not None:
                held, self.held = self.held, None
                await self._send(held)
            self.finished = not message.get("more_body", False)
        await self._send(message)

    async def fail(self, status: int, detail: str) -> None:
        """Answer ``status``; once started, end a stream with an ``error`` event instead."""
        if not self.started:
            retry = {"retry-after": "1"} if status == 503 else {}
            await _asgi.send_json(self.send, status, {"detail": detail}, retry)
            return
        if self.finished:
            return
        if self.event_stream:
            # LangServe's shape: RemoteRunnable raises an HTTPStatusError from it.
            data = json.dumps({"status_code": status, "message": detail})
            event = f"event: error\r\ndata: {data}\r\n\r\n".encode()
            self.held = None
            await self._send({"type": "http.response.body", "body": event, "more_body": True})
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})


class LimitsMiddleware:
    """Apply ``ServerSettings`` limits to the runnable endpoints and count every request.

    ``validate_input`` maps a route prefix (``"/router"``) to the check of that route's
    inputs (``"input"``, or each of a batch's ``"inputs"``), which raises ``ValueError``
    naming the field: 422 before the runnable runs, or an error entry of its own in a
    batch. ``guarded`` names more POST paths under the same limits, each with the body
    field that holds its input (``{"/v1/chat/completions": "messages"}``), whose route
    reads the messages' content (``read_question``).
    """

    def __init__(
        self,
        app: _asgi.ASGIApp,
        settings: ServerSettings,
        metrics: RouterMetrics,
        validate_input: Mapping[str, InputValidator] | None = None,
        guarded: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.validate_input = dict(validate_input or {})
        self.guarded = dict(guarded or {})
        self.slots = asyncio.Semaphore(settings.max_concurrency)

    async def __call__(self, scope: _asgi.Scope, receive: _asgi.Receive, send: _asgi.Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = _Response(send)
        start = time.perf_counter()
        path = scope["path"].rstrip("/")
        key = self.guarded.get(path) or _INPUT_ENDPOINTS.get(path.rsplit("/", 1)[-1])
        try:
            if scope["method"] == "POST" and key:
                await self._guarded(scope, receive, response, key)
            else:
                await self.app(scope, receive, response.send)
        except LimitError as exc:
            self.metrics.rejected.labels(reason=exc.reason).inc()
            if response.started:
                logger.warning("%s after the answer started: %s", exc.reason, exc.detail)
            await response.fail(exc.status, exc.detail)
        except Exception:
            if not response.started:
                raise  # the server error handler answers 500
            logger.exception("%s failed after its answer started", scope["path"])
            await response.fail(500, "Internal Server Error")
        finally:
            seconds = time.perf_counter() - start
            self.metrics.observe_request(scope["path"], response.status, seconds)

    async def _read_body(self, scope: _asgi.Scope, receive: _asgi.Receive) -> bytes:
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

    def _validator(self, path: str) -> InputValidator | None:
        """The input check of the route that ``path`` belongs to, if it has one."""
        route = path.rstrip("/").rsplit("/", 1)[0]
        return self.validate_input.get(route)

    def _read(
        self, value: Any, where: str, validator: InputValidator | None, *, routed: bool = False
    ) -> Any:
        """Read one input: the validator's value, or the JSON when the route has none.

        ``routed``: the route reads the input's messages (their content is its to check).

        Raises:
            LimitError: 422 for bad Unicode, an input too long, or an invalid input.
        """
        read = validator is not None or routed
        strings = _unread_strings(value, where) if read else _strings(value, where)
        if problem := _first_problem(strings):
            raise problem
        chars, limit = text_chars(value), self.settings.max_input_chars
        if chars > limit:
            msg = f"{where} holds {chars} characters; the limit is {limit}"
            raise LimitError(422, "input_too_long", msg)
        if validator is None:
            return value
        try:
            return validator(value, where)
        except ValueError as exc:
            raise LimitError(422, "invalid_input", str(exc)) from None

    def _read_inputs(
        self, payload: Any, key: str, validator: InputValidator | None
    ) -> tuple[Any, dict[int, LimitError]]:
        """Read one input (raising), or a batch's (its problems by index).

        Returns:
            The body with its inputs read (``None`` when it has none), and a batch's
            problems by index.
        """
        if not isinstance(payload, dict) or key not in payload:
            if problem := unicode_problem(payload, ""):
                raise problem
            return None, {}  # LangServe answers 422 for a body without its input
        envelope = {name: value for name, value in payload.items() if name != key}
        if problem := unicode_problem(envelope, ""):
            raise problem
        inputs = payload[key]
        if key != "inputs":
            value = self._read(inputs, key, validator, routed=key in self.guarded.values())
            return {**payload, key: value}, {}
        if not isinstance(inputs, list):
            return None, {}
        limit = self.settings.max_batch_size
        if len(inputs) > limit:
            msg = f"batch of {len(inputs)} inputs exceeds max_batch_size {limit}"
            raise LimitError(422, "batch_too_large", msg)
        config = payload.get("config")
        if isinstance(config, list) and len(config) != len(inputs):
            msg = f"config: {len(config)} configs for {len(inputs)} inputs"
            raise LimitError(422, "invalid_config", msg)
        read: list[Any] = []
        problems: dict[int, LimitError] = {}
        for index, value in enumerate(inputs):
            try:
                read.append(self._read(value, f"inputs[{index}]", validator))
            except LimitError as problem:
                read.append(value)
                problems[index] = problem
        return {**payload, key: read}, problems

    async def _guarded(
        self, scope: _asgi.Scope, receive: _asgi.Receive, response: _Response, key: str
    ) -> None:
        body = await self._read_body(scope, receive)
        # The request's time counts from here, its wait for a slot included: a client
        # that waits request_timeout_s (plus the network) always hears back.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.request_timeout_s
        payload = decode_json(body, self.settings.max_json_depth)
        checked, problems = self._read_inputs(payload, key, self._validator(scope["path"]))
        if checked is not None:  # the route takes this body as decoded, its inputs read
            scope = {**scope, DECODED_BODY: payload, CHECKED_BODY: checked}
        for problem in problems.values():
            self.metrics.rejected.labels(reason=problem.reason).inc()
        queued_until = min(deadline, loop.time() + self.settings.queue_timeout_s)
        try:
            async with asyncio.timeout_at(queued_until):
                await self.slots.acquire()
        except TimeoutError:
            msg = f"server busy: {self.settings.max_concurrency} requests in flight; retry later"
            raise LimitError(503, "overloaded", msg) from None
        self.metrics.in_flight.inc()
        try:
            async with asyncio.timeout_at(deadline):
                if problems:
                    errors = {index: problem.detail for index, problem in problems.items()}
                    read = checked["inputs"]
                    await answer_batch(
                        self.app, scope, receive, response.send, payload, errors, read
                    )
                else:
                    await self.app(scope, _asgi.replay(body, receive), response.send)
        except TimeoutError:
            msg = f"request took longer than {self.settings.request_timeout_s:g}s"
            raise LimitError(504, "timeout", msg) from None
        finally:
            self.metrics.in_flight.dec()
            self.slots.release()

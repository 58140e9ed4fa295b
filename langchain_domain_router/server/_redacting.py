"""An ASGI middleware that redacts every response body on its way out of the server.

The routing record, the offline answer, logs, audit lines and metrics redact their own
strings, but a route can send out what the router never wrote: LangServe's
``stream_log`` (which its playground reads) streams every traced run's output, and
langchain-core puts a provider's error body, key and all, into a failed chat-model
run's ``response_metadata``. So the app redacts at one place on the way out, for every
route mounted on it, now or later: a whole body (its ``content-length`` fixed) and a
streamed one line by line (an SSE event's ``data:`` line, an NDJSON record).

Only the app's static files (the playground's and the docs' HTML, scripts and styles)
pass untouched: they come from installed packages, and credential-shaped patterns in
minified code must not be rewritten.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_domain_router._redact import redact, redact_value
from langchain_domain_router.server._asgi import ASGIApp, Message, Receive, Scope, Send

_STATIC_TYPES = (
    b"text/html",
    b"text/css",
    b"text/javascript",
    b"application/javascript",
    b"image/",
    b"font/",
)
_SSE_FIELD = "data:"


class RedactingMiddleware:
    """Redact secrets from the body of every HTTP response the wrapped app sends.

    Example:
        ```python
        app.add_middleware(RedactingMiddleware, secrets={"configured-api-key"})
        ```
    """

    def __init__(self, app: ASGIApp, *, secrets: set[str] | None = None) -> None:
        self.app = app
        # Shared, not copied: a secret added to the set later is redacted from then on.
        self.secrets = secrets if secrets is not None else set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        # A HEAD response announces the length of a body it does not send.
        if scope["type"] != "http" or scope.get("method") == "HEAD":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _Outgoing(send, self.secrets).send)


class _Outgoing:
    """One response: a whole body is held until its end, a streamed one until each newline."""

    def __init__(self, send: Send, secrets: set[str]) -> None:
        self._send = send
        self.secrets = secrets
        self.start: Message | None = None
        self.whole = False
        self.passthrough = False
        self.held = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers") or [])
            content_type = headers.get(b"content-type", b"").lower()
            self.passthrough = content_type.startswith(_STATIC_TYPES) or (
                headers.get(b"content-encoding", b"identity") != b"identity"
            )
            self.whole = b"content-length" in headers
            if self.passthrough or not self.whole:
                await self._send(message)
            else:
                self.start = message  # its content-length is known once the body is
            return
        if message["type"] != "http.response.body" or self.passthrough:
            if self.start is not None:  # e.g. a file sent by path: its start goes first
                await self._send(self.start)
                self.start, self.passthrough = None, True
            await self._send(message)
            return
        self.held += message.get("body", b"")
        more = bool(message.get("more_body", False))
        if self.whole:
            if not more:
                await self._send_whole()
            return
        cut = len(self.held) if not more else self.held.rfind(b"\n") + 1
        ready, self.held = self.held[:cut], self.held[cut:]
        if ready or not more:
            body = b"".join(self._redact_line(line) for line in ready.splitlines(keepends=True))
            await self._send({"type": "http.response.body", "body": body, "more_body": more})

    async def _send_whole(self) -> None:
        assert self.start is not None  # noqa: S101 - set by the start message
        body = self._redact_line(self.held)
        headers = [(k, v) for k, v in self.start.get("headers") or [] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self._send({**self.start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    def _redact_line(self, line: bytes) -> bytes:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:  # not text: nothing a redaction rule could match
            return line
        clean = redact(text, self.secrets)
        if clean == text:
            return line
        return _redact_json(text, self.secrets, fallback=clean).encode("utf-8")


def _redact_json(text: str, secrets: set[str], *, fallback: str) -> str:
    """Redact the string values of a JSON text (or SSE ``data:`` line), keeping its syntax.

    A rule applied to the raw text could match across JSON quotes and break the
    document; applied to each string value it cannot. Text that is not JSON gets
    ``fallback``, the raw text redacted.
    """
    body = text.rstrip("\r\n")
    ending = text[len(body) :]
    prefix = ""
    if body.startswith(_SSE_FIELD):
        prefix, body = _SSE_FIELD + " ", body.removeprefix(_SSE_FIELD).lstrip(" ")
    try:
        value: Any = json.loads(body)
    except ValueError:
        return fallback
    clean = redact_value(value, secrets)
    if clean == value:  # the raw rule matched across JSON syntax, no value held a secret
        return text
    return prefix + json.dumps(clean, ensure_ascii=False, separators=(",", ":")) + ending

"""Every error under ``/v1/`` in the OpenAI shape, with the status OpenAI clients expect.

The limits middleware and FastAPI answer errors as ``{"detail": ...}``; OpenAI clients
read ``{"error": {"message", "type", "param", "code"}}``. This middleware rewrites those
answers on the ``/v1/`` routes: an invalid body (422) becomes 400, the server's own
concurrency limit (503 after the queue wait) becomes 429, which the SDKs retry.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_domain_router.server import _asgi
from langchain_domain_router.server._openai_schema import error_body

OPENAI_PREFIX = "/v1/"
_STATUS = {422: 400, 503: 429}
_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "not_found_error"}
_TYPES |= {413: "invalid_request_error", 429: "rate_limit_error", 504: "timeout_error"}
_CODES = {404: "not_found", 413: "request_too_large", 429: "server_busy", 504: "timeout"}


def error_type(status: int) -> str:
    """The OpenAI error ``type`` of an HTTP status."""
    return _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def _message(detail: Any) -> str:
    """FastAPI's ``detail`` (a string, or a list of validation errors) as one line."""
    if isinstance(detail, list):
        parts = [
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg')}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        ]
        return "; ".join(parts)
    return str(detail)


def reshape(status: int, body: bytes) -> tuple[int, bytes]:
    """An error answer's status and body in the OpenAI shape (kept if already in it)."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = {"detail": body.decode("utf-8", "replace")[:500] or f"HTTP {status}"}
    if isinstance(decoded, dict) and isinstance(decoded.get("error"), dict):
        return status, body
    detail = decoded.get("detail") if isinstance(decoded, dict) else decoded
    status = _STATUS.get(status, status)
    shaped = error_body(_message(detail), error_type(status), code=_CODES.get(status))
    return status, json.dumps(shaped, ensure_ascii=False).encode()


class OpenAIErrorsMiddleware:
    """Rewrite error answers under ``/v1/`` into the OpenAI error shape.

    Example:
        ```python
        app.add_middleware(OpenAIErrorsMiddleware)  # outside LimitsMiddleware
        ```
    """

    def __init__(self, app: _asgi.ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: _asgi.Scope, receive: _asgi.Receive, send: _asgi.Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(OPENAI_PREFIX):
            await self.app(scope, receive, send)
            return
        held: _asgi.Message | None = None
        chunks: list[bytes] = []

        async def send_shaped(message: _asgi.Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held = message
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            status, body = reshape(held["status"], b"".join(chunks))
            skip = {b"content-length", b"content-type"}
            headers = {
                bytes(k).decode("latin-1"): bytes(v).decode("latin-1")
                for k, v in held.get("headers") or []
                if bytes(k).lower() not in skip
            }
            held = None
            await _asgi.send_json(send, status, json.loads(body), headers)

        await self.app(scope, receive, send_shaped)

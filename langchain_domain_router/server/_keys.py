"""Bearer keys: who may spend the operator's provider keys through this server.

With keys configured (``--api-keys FILE`` / ``DOMAIN_ROUTER_API_KEYS``), every request
but the health, readiness and metrics probes needs ``Authorization: Bearer <key>``; a
missing or wrong key is 401 in the OpenAI error shape, before the body is read. Keys are
compared in constant time and never written anywhere: not to logs, audit lines or
metrics labels.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from pathlib import Path

from langchain_domain_router.server import _asgi
from langchain_domain_router.server._metrics import RouterMetrics
from langchain_domain_router.server._openai_schema import error_body

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Paths that answer without a key: probes must work before anyone holds one."""


def read_keys(path: str | Path) -> tuple[bytes, ...]:
    """Read bearer keys from a file: one per line; blank lines and ``#`` comments skipped.

    Raises:
        ValueError: If the file cannot be read or holds no key (the message names the
            file and line, never a key).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read the API key file {str(path)!r}: {type(exc).__name__}"
        raise ValueError(msg) from None
    keys: list[bytes] = []
    for number, line in enumerate(text.splitlines(), start=1):
        key = line.strip()
        if not key or key.startswith("#"):
            continue
        if not key.isascii() or not key.isprintable() or " " in key:
            msg = f"{path}:{number}: an API key is printable ASCII without spaces"
            raise ValueError(msg)
        keys.append(key.encode())
    if not keys:
        msg = f"the API key file {str(path)!r} holds no key"
        raise ValueError(msg)
    return tuple(keys)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an interface only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, *, keys_file: str | None, allow_unauthenticated: bool) -> None:
    """Refuse to serve other machines without keys, unless told to.

    Raises:
        ValueError: One line saying what to do, for a non-loopback ``host`` without keys.
    """
    if keys_file or allow_unauthenticated or is_loopback(host):
        return
    msg = (
        f"refusing to serve {host} without API keys: anyone who reaches the port could "
        "spend the experts' provider keys; pass --api-keys FILE, or --allow-unauthenticated "
        "if something in front of the server checks callers"
    )
    raise ValueError(msg)


def _bearer(scope: _asgi.Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = bytes(value).partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None


class ApiKeyMiddleware:
    """Answer 401 to a request without a valid bearer key (probes excepted).

    Example:
        ```python
        app.add_middleware(ApiKeyMiddleware, keys=read_keys("keys.txt"), metrics=metrics)
        ```
    """

    def __init__(self, app: _asgi.ASGIApp, keys: tuple[bytes, ...], metrics: RouterMetrics) -> None:
        self.app = app
        self.keys = keys
        self.metrics = metrics

    def _valid(self, token: bytes | None) -> bool:
        if not token:
            return False
        # Every key is compared, so the time taken says nothing about which one is close.
        matches = [hmac.compare_digest(token, key) for key in self.keys]
        return any(matches)

    async def __call__(self, scope: _asgi.Scope, receive: _asgi.Receive, send: _asgi.Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        if self._valid(token):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        self.metrics.rejected.labels(reason="unauthorized").inc()
        what = "no bearer key was sent" if token is None else "the bearer key is not valid"
        message = f"{what}: send 'Authorization: Bearer <key>' with a key of this server"
        body = error_body(message, "invalid_request_error", code="invalid_api_key")
        await _asgi.send_json(send, 401, body, {"www-authenticate": "Bearer"})
        self.metrics.observe_request(scope["path"], 401, time.perf_counter() - start)

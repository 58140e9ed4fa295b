"""A replica's name on every answer, and its way out: draining on ``SIGTERM``.

Behind a balancer, ``x-domain-router-replica`` tells a client (and a test) which
replica answered. On ``SIGTERM`` a replica first turns ``/readyz`` to 503 and keeps
serving for ``drain_s`` seconds, so a balancer that polls readiness stops sending it
requests; then uvicorn stops accepting connections, lets the requests in flight finish
(at most ``request_timeout_s``) and exits. ``/healthz`` answers 200 throughout: the
process is alive, only leaving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType

from langchain_domain_router.server import _asgi

logger = logging.getLogger(__name__)

REPLICA_HEADER = b"x-domain-router-replica"


def default_replica_name() -> str:
    """``<host name>-<process id>``: a pod's name in Kubernetes, plus the worker."""
    return f"{socket.gethostname()}-{os.getpid()}"


class ReplicaHeaderMiddleware:
    """Add ``x-domain-router-replica: <name>`` to every HTTP response."""

    def __init__(self, app: _asgi.ASGIApp, name: str) -> None:
        self.app = app
        self.header = (REPLICA_HEADER, name.encode("latin-1", "replace"))

    async def __call__(self, scope: _asgi.Scope, receive: _asgi.Receive, send: _asgi.Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: _asgi.Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, named)


def drain_on_sigterm(drain_s: float, on_drain: Callable[[], None]) -> None:
    """On ``SIGTERM``, call ``on_drain`` now and pass the signal on ``drain_s`` seconds later.

    Wraps the handler installed before (uvicorn's, which starts its graceful shutdown).
    Does nothing outside the main thread (signal handlers live there) or when
    ``drain_s`` is 0. A second ``SIGTERM`` during the drain is passed on at once;
    ``SIGINT`` (Ctrl-C) is not delayed at all.
    """
    if drain_s <= 0 or threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    draining = False

    def pass_on(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        else:  # SIG_DFL: no server loop of ours to stop, so end as the signal would
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal draining
        if draining:
            pass_on(signum, frame)
            return
        draining = True
        on_drain()
        logger.warning("SIGTERM: /readyz answers 503; shutting down in %gs", drain_s)
        loop.call_soon_threadsafe(loop.call_later, drain_s, pass_on, signum, frame)

    signal.signal(signal.SIGTERM, handle)

"""Request coalescing: gather concurrent async calls into one batched call on a worker thread."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_Request = tuple[str, asyncio.AbstractEventLoop, asyncio.Future[T]]
"""One waiting call: its input, the loop it waits on, and the future it awaits."""


def _settle(future: asyncio.Future[T], result: T | BaseException) -> None:
    # Runs on the caller's loop; a caller that timed out or was cancelled is already done.
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class Coalescer(Generic[T]):
    """Run concurrent ``submit`` calls as one ``run_batch`` call on a worker thread.

    A worker takes the first waiting request, waits up to ``window_s`` for more (or
    until ``max_batch`` are waiting), then runs them all in one ``run_batch`` call.
    Requests that arrive while a batch runs form the next batch, so under load calls
    batch up even with ``window_s=0``. A second worker (up to ``workers``) starts only
    when requests wait and every worker is busy: at most ``workers`` batches run at once
    (a classifier's forward passes that fit the cores). Each request remembers its own
    event loop, so callers on several loops and threads can share one coalescer. Workers
    exit after ``idle_s`` without requests and restart on the next one.

    Example:
        ```python
        coalescer = Coalescer(lambda texts: [len(t) for t in texts], max_batch=32, window_s=0.002)
        lengths = await asyncio.gather(*(coalescer.submit(t) for t in ["a", "bb"]))
        ```
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[str]], Sequence[T]],
        *,
        max_batch: int,
        window_s: float,
        workers: int = 1,
        idle_s: float = 5.0,
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._window_s = window_s
        self._workers = max(1, workers)
        self._idle_s = idle_s
        self._pending: deque[_Request[T]] = deque()
        self._cond = threading.Condition()
        self._running = 0
        self._waiting = 0
        self.batches = 0
        """How many batches the worker has run (for tests and benchmarks)."""

    async def submit(self, text: str) -> T:
        """Queue ``text`` and wait for its result without blocking the event loop.

        Args:
            text: One input of ``run_batch``.

        Returns:
            Its result; an input that makes ``run_batch`` fail raises that error here,
            and only here.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._cond:
            self._pending.append((text, loop, future))
            self._cond.notify()
            self._add_worker_if_needed()
        return await future

    def _add_worker_if_needed(self) -> None:
        """Start a worker when requests wait, no worker is free and one more is allowed.

        Called with ``_cond`` held: by ``submit``, and by a worker that leaves requests
        queued behind the batch it took.
        """
        if self._pending and not self._waiting and self._running < self._workers:
            self._running += 1
            worker = threading.Thread(target=self._work, name="domain-router-coalescer")
            worker.daemon = True
            worker.start()

    def _take(self) -> list[_Request[T]] | None:
        """Wait for a batch; ``None`` means the worker has been idle long enough to exit."""
        with self._cond:
            self._waiting += 1
            ready = self._cond.wait_for(lambda: self._pending, timeout=self._idle_s)
            self._waiting -= 1
            if not ready:
                self._running -= 1
                return None
            deadline = time.monotonic() + self._window_s
            while len(self._pending) < self._max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            count = min(self._max_batch, len(self._pending))
            batch = [self._pending.popleft() for _ in range(count)]
            self._add_worker_if_needed()
            return batch

    def _work(self) -> None:
        try:
            while (batch := self._take()) is not None:
                live = [request for request in batch if not request[2].cancelled()]
                if live:
                    self._dispatch(live)
        except BaseException:
            # Let the next submit start a fresh worker for the requests still queued.
            with self._cond:
                self._running -= 1
            raise

    def _dispatch(self, batch: list[_Request[T]]) -> None:
        results: Sequence[T | BaseException]
        try:
            results = self._run_batch([text for text, _, _ in batch])
            self.batches += 1
        except Exception:
            # One bad input must not fail its neighbours: retry each alone, so only the
            # caller whose input fails sees the error.
            logger.debug("coalesced batch failed; retrying its %d inputs one by one", len(batch))
            results = [self._run_one(text) for text, _, _ in batch]
        for (_, loop, future), result in zip(batch, results, strict=True):
            try:
                loop.call_soon_threadsafe(_settle, future, result)
            except RuntimeError:
                logger.debug("a caller's event loop closed before its result arrived")

    def _run_one(self, text: str) -> T | BaseException:
        try:
            self.batches += 1
            return self._run_batch([text])[0]
        except Exception as exc:
            return exc

"""Prometheus metrics: HTTP traffic, and a callback handler that counts routing decisions."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from typing_extensions import override

from langchain_domain_router._redact import redact_value
from langchain_domain_router.audit import RoutingEventHandler

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OTHER_ENDPOINT = "other"
_PREFIX = "domain_router_"
"""What every metric's name starts with."""


class RouterMetrics(RoutingEventHandler):
    """The server's Prometheus metrics; as a callback handler it counts routing decisions.

    Metrics live in their own registry, so several apps in one process do not collide.
    Under several worker processes ``PROMETHEUS_MULTIPROC_DIR`` (set by ``serve``) makes
    ``/metrics`` sum the workers (see ``docs/deployment.md``).

    Example:
        ```python
        metrics = RouterMetrics()
        router.invoke("근저당권이란?", config={"callbacks": [metrics]})
        print(metrics.render().decode())
        ```
    """

    run_inline = True  # counters are cheap and thread-safe: no executor hop per event

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__()
        self.registry = registry or CollectorRegistry()
        self.endpoints: frozenset[str] = frozenset()
        self.requests = self._counter(
            "http_requests", "HTTP requests by endpoint and status code.", "endpoint", "status"
        )
        self.request_latency = self._histogram(
            "http_request_duration_seconds", "HTTP request duration by endpoint.", "endpoint"
        )
        self.in_flight = Gauge(
            f"{_PREFIX}http_requests_in_flight",
            "Runnable requests being served now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.rejected = self._counter(
            "rejected_requests", "Requests refused by a limit, by reason.", "reason"
        )
        self.routes = self._counter(
            "routes",
            "Answered questions by classified domain, answering expert and routing reason.",
            "domain",
            "expert",
            "reason",
        )
        self.fallbacks = self._counter(
            "fallbacks", "Questions not answered by their domain's expert, by reason.", "reason"
        )
        self.offline_answers = self._counter(
            "offline_answers", "Answers given by the offline expert, by expert.", "expert"
        )
        self.classifier_latency = self._histogram(
            "classifier_latency_seconds", "Time spent classifying one question."
        )
        self.expert_latency = self._histogram(
            "expert_latency_seconds",
            "Time spent in the answering expert, retries included.",
            "expert",
        )
        self.tokens = self._counter(
            "tokens",
            "Tokens reported by expert models, by expert and direction.",
            "expert",
            "direction",
        )
        self.cost = self._counter(
            "estimated_cost_usd",
            "Estimated expert cost in USD, from token usage and profile prices.",
            "expert",
        )

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(_PREFIX + name, documentation, labels, registry=self.registry)

    def _histogram(self, name: str, documentation: str, *labels: str) -> Histogram:
        return Histogram(
            _PREFIX + name, documentation, labels, buckets=_LATENCY_BUCKETS, registry=self.registry
        )

    def track_endpoints(self, paths: Iterable[str]) -> None:
        """Name the paths that get their own ``endpoint`` label (others are ``other``)."""
        self.endpoints = frozenset(paths)

    def endpoint(self, path: str) -> str:
        """The ``endpoint`` label for ``path``: bounded, whatever clients request."""
        return path if path in self.endpoints else _OTHER_ENDPOINT

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        """Count one HTTP request."""
        endpoint = self.endpoint(path)
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.request_latency.labels(endpoint=endpoint).observe(seconds)

    @override
    def on_routing_complete(
        self, routing: dict[str, Any], *, question: str | None, metadata: Mapping[str, Any]
    ) -> None:
        # Labels come from the config and the taxonomy; redacting keeps that true whatever
        # a record holds.
        domain, expert, reason = redact_value(
            [str(routing.get(k)) for k in ("domain", "expert", "reason")]
        )
        self.routes.labels(domain=domain, expert=expert, reason=reason).inc()
        if reason != "confident":
            self.fallbacks.labels(reason=reason).inc()
        if routing.get("offline"):
            self.offline_answers.labels(expert=expert).inc()
        self.classifier_latency.observe((routing.get("classifier_latency_ms") or 0.0) / 1000)
        if routing.get("expert_latency_ms") is not None:
            self.expert_latency.labels(expert=expert).observe(routing["expert_latency_ms"] / 1000)
        for direction in ("input", "output"):
            count = routing.get(f"{direction}_tokens")
            if count:
                self.tokens.labels(expert=expert, direction=direction).inc(count)
        if routing.get("estimated_cost_usd"):
            self.cost.labels(expert=expert).inc(routing["estimated_cost_usd"])

    def render(self) -> bytes:
        """The metrics in Prometheus text format (all workers' in multiprocess mode)."""
        if directory := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            forget_dead_workers(directory)
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of worker processes that have died.

    A worker killed with requests in flight never decrements its in-flight gauge, and
    uvicorn, unlike gunicorn, has no hook to call ``mark_process_dead`` when a worker
    exits; without this the summed gauge would stay that much too high for good.
    """
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            prometheus_multiprocess.mark_process_dead(int(pid), directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True

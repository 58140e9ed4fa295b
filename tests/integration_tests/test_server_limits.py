"""The limits middleware in process: timeouts, bounded concurrency, settings from env."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from langchain_domain_router.server import RouterMetrics, ServerSettings
from langchain_domain_router.server._limits import LimitsMiddleware, text_chars
from tests.integration_tests._servers import child_env


async def slow_app(scope, receive, send) -> None:
    """An ASGI app that reads the body, waits 0.5 s, then answers 200."""
    if scope["path"] != "/healthz":
        await receive()
        await asyncio.sleep(0.5)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def client(**settings: float) -> tuple[httpx.AsyncClient, RouterMetrics]:
    metrics = RouterMetrics()
    app = LimitsMiddleware(slow_app, ServerSettings(**settings), metrics)
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://test"), metrics


async def test_a_request_over_the_timeout_is_504():
    http, metrics = client(request_timeout_s=0.1)
    async with http:
        response = await http.post("/router/invoke", json={"input": "미분"})
    assert response.status_code == 504 and "longer than 0.1s" in response.json()["detail"]
    sample = ("domain_router_rejected_requests_total", {"reason": "timeout"})
    assert metrics.registry.get_sample_value(*sample) == 1


async def test_requests_beyond_the_concurrency_bound_wait_then_get_503():
    http, _ = client(max_concurrency=1, queue_timeout_s=0.1)
    async with http:
        first, second, health = await asyncio.gather(
            http.post("/router/invoke", json={"input": "미분"}),
            http.post("/router/invoke", json={"input": "적분"}),
            http.get("/healthz"),  # never queued behind the runnable endpoints
        )
    assert sorted([first.status_code, second.status_code]) == [200, 503]
    refused = first if first.status_code == 503 else second
    assert refused.headers["retry-after"] == "1"
    assert health.status_code == 200


async def test_queued_requests_are_served_when_a_slot_frees():
    http, _ = client(max_concurrency=2, queue_timeout_s=5)
    async with http:
        responses = await asyncio.gather(
            *(http.post("/router/invoke", json={"input": str(i)}) for i in range(5))
        )
    assert [r.status_code for r in responses] == [200] * 5


async def test_the_wait_for_a_slot_counts_toward_the_request_timeout():
    # Issue 14's fault run: a client that waits request_timeout_s must hear back, so a
    # request queued behind a slow one may not then run for a full request_timeout_s.
    http, _ = client(max_concurrency=1, queue_timeout_s=5, request_timeout_s=0.8)
    async with http:
        responses = await asyncio.gather(
            *(http.post("/router/invoke", json={"input": str(i)}) for i in range(2))
        )
    # The queued one waited 0.5 s, then had 0.3 s left for 0.5 s of work.
    assert sorted(r.status_code for r in responses) == [200, 504]


def test_a_killed_worker_leaves_no_requests_in_flight(tmp_path: Path, monkeypatch):
    # Issue 14's fault run: a worker SIGKILLed mid-request never takes its requests off
    # the summed in-flight gauge, and uvicorn has no hook to do it for the worker.
    code = (
        "import os, signal\n"
        "from langchain_domain_router.server import RouterMetrics\n"
        "RouterMetrics().in_flight.inc(3)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = child_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    command = [sys.executable, "-c", code]
    worker = subprocess.run(command, env=env, check=False, timeout=300)  # noqa: S603 - fixed
    assert worker.returncode == -signal.SIGKILL and list(tmp_path.glob("gauge_livesum_*.db"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = RouterMetrics().render().decode()
    in_flight = re.search(r"^domain_router_http_requests_in_flight (\S+)$", text, re.MULTILINE)
    assert (float(in_flight.group(1)) if in_flight else 0.0) == 0.0


def test_settings_round_trip_through_the_environment():
    settings = ServerSettings(max_batch_size=7, audit_path="-", audit_include_prompt=True)
    assert ServerSettings.from_env(settings.to_env()) == settings
    with pytest.raises(ValueError, match="max_concurrency"):
        ServerSettings.from_env({"DOMAIN_ROUTER_MAX_CONCURRENCY": "0"})


def test_text_chars_counts_every_string():
    value = {"messages": [{"type": "human", "content": "가나다"}], "question": "라마"}
    assert text_chars(value) == len("human") + 3 + 2  # values only, not keys

"""SIGTERM: /readyz turns 503 first, requests in flight finish, then the process exits."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.fake_openai import FakeOpenAIServer
from tests.integration_tests._servers import (
    ServerProcess,
    free_port,
    router_config,
    serve_command,
    write_config,
)

DRAIN_S = 3.0
ANSWER_S = 5.0  # the expert's answer takes this long: in flight across the whole drain


def test_sigterm_drains_readiness_then_finishes_requests_in_flight(
    math_checkpoint: Path, tmp_path: Path
):
    with FakeOpenAIServer(hang_s=ANSWER_S) as slow:
        config = router_config(math_checkpoint, slow.base_url, expert_model="fake-hang")
        config["experts"][0]["timeout_s"] = 30.0
        path = write_config(tmp_path / "router.yaml", config)
        port = free_port()
        command = serve_command(path, port, "--drain-s", str(DRAIN_S))
        server = ServerProcess(command, port=port, log_path=tmp_path / "serve.log").wait_ready()
        try:
            in_flight: list[httpx.Response] = []
            request = threading.Thread(
                target=lambda: in_flight.append(
                    httpx.post(f"{server.url}/router/invoke", json={"input": "미분?"}, timeout=60)
                )
            )
            request.start()
            deadline = time.monotonic() + 10
            while slow.calls["fake-hang"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)  # until the expert call is under way
            terminated = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            ready = httpx.get(f"{server.url}/readyz", timeout=5)
            assert ready.status_code == 503
            assert ready.json()["status"] == "draining"
            assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
            # Still serving while it drains: a balancer's last requests are answered.
            assert httpx.get(f"{server.url}/metrics", timeout=5).status_code == 200
            request.join(timeout=60)
            server.process.wait(timeout=30)
            exited = time.monotonic() - terminated
        finally:
            server.stop()
    (answer,) = in_flight
    assert answer.status_code == 200
    assert answer.json()["output"]["content"] == "[fake-hang] 답변: 미분?"
    # It left after the drain and the request, not at once and not at a timeout.
    assert DRAIN_S <= exited < ANSWER_S + DRAIN_S + 10
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert "Traceback" not in log

"""Helpers to run real server processes on 127.0.0.1 for tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-test-NOT-A-REAL-KEY-42"  # must never show up in audit lines or metrics


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def router_config(
    model_dir: Path,
    base_url: str,
    *,
    expert_model: str = "fake-scripted",
    timeout_s: float = 2.0,
    max_retries: int = 1,
) -> dict[str, Any]:
    """A config whose ``math`` expert and ``general`` fallback call the fake OpenAI server."""
    # max_retries=0 for the OpenAI client: the router's own retry policy is under test.
    kwargs = {"base_url": base_url, "api_key": API_KEY, "max_retries": 0}
    return {
        "min_confidence": 0.4,
        "min_margin": 0.1,
        "classifier": {"model": str(model_dir)},
        "experts": [
            {
                "name": "math",
                "model": f"openai:{expert_model}",
                "model_kwargs": kwargs,
                "domains": ["Math"],
                "timeout_s": timeout_s,
                "max_retries": max_retries,
                "input_cost_per_1m": 1.0,
                "output_cost_per_1m": 2.0,
            }
        ],
        "fallback": {
            "name": "general",
            "model": "openai:fake-answer",
            "model_kwargs": kwargs,
            "timeout_s": 10.0,
        },
    }


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(config), allow_unicode=True), encoding="utf-8")
    return path


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: this checkout importable, no real API keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGSMITH_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(LANGCHAIN_TRACING_V2="false", LANGSMITH_TRACING="false", **extra)
    return env


class ServerProcess:
    """A server subprocess that is ready once ``ready_path`` answers 200."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        port: int,
        log_path: Path,
        ready_path: str = "/readyz",
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command line
            list(command),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env or child_env()),
            cwd=cwd or REPO_ROOT,
        )
        self.ready_path = ready_path

    def wait_ready(self, timeout_s: float = 120.0) -> ServerProcess:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        log = self.log_path.read_text(errors="replace")[-4000:]
        msg = f"server at {self.url} did not become ready in {timeout_s:g}s:\n{log}"
        raise RuntimeError(msg)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()


def serve_command(config_path: Path, port: int, *options: str) -> list[str]:
    """``python -m langchain_domain_router serve`` on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "langchain_domain_router",
        "serve",
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *options,
    ]


def start_server(directory: Path, config: Mapping[str, Any], *options: str) -> ServerProcess:
    """``domain-router serve`` of ``config`` (written to ``directory``) on a free port, ready."""
    path = write_config(directory / "router.yaml", config)
    port = free_port()
    command = serve_command(path, port, *options)
    return ServerProcess(command, port=port, log_path=directory / "server.log").wait_ready()

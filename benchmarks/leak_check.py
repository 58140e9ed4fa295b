"""Leak check: how many responses carry an API key that the upstream quotes in its errors.

Starts, on 127.0.0.1 only, the fake OpenAI server and ``domain-router serve`` with a
config whose ``math`` expert calls the fake server's ``fake-401`` model (it refuses with
401 and quotes the caller's key, as some providers and proxies do) with a configured
key, and whose ``general`` fallback answers. Sends ``--requests`` questions, alternately
to ``/router/invoke`` and ``/router/stream``, ``--concurrency`` at a time, then counts
the responses, server log lines, audit lines and ``/metrics`` samples holding the key.
It exits 1 when the key appears anywhere.

    python benchmarks/leak_check.py --requests 300 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.conftest import build_checkpoint  # noqa: E402
from tests.fake_openai import FakeOpenAIServer  # noqa: E402
from tests.integration_tests._servers import (  # noqa: E402
    ServerProcess,
    free_port,
    router_config,
    serve_command,
    write_config,
)

KEY = "cfgkey-benchmark-4Zq8Wm1x"


async def ask(client: httpx.AsyncClient, index: int, gate: asyncio.Semaphore) -> str:
    endpoint = "/router/invoke" if index % 2 == 0 else "/router/stream"
    async with gate:
        response = await client.post(endpoint, json={"input": f"미분 질문 {index}"})
    return response.text


async def run(url: str, requests: int, concurrency: int) -> list[str]:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        return list(await asyncio.gather(*(ask(client, i, gate) for i in range(requests))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer() as upstream:
        tmp_path = Path(tmp)
        model = build_checkpoint(tmp_path / "tiny", bias={"Math": 10.0})
        config = router_config(model, upstream.base_url, expert_model="fake-401")
        config["experts"][0]["model_kwargs"]["api_key"] = KEY
        path = write_config(tmp_path / "router.yaml", config)
        audit, log, port = tmp_path / "audit.jsonl", tmp_path / "server.log", free_port()
        command = serve_command(path, port, "--audit-log", str(audit), "--log-level", "info")
        server = ServerProcess(command, port=port, log_path=log).wait_ready()
        try:
            bodies = asyncio.run(run(server.url, args.requests, args.concurrency))
            metrics = httpx.get(f"{server.url}/metrics").text
        finally:
            server.stop()
        rows = [
            ("HTTP responses", len(bodies), sum(KEY in body for body in bodies)),
            ("  ...reporting the 401", len(bodies), sum("401" in body for body in bodies)),
            ("server log lines", *_count(log.read_text(errors="replace").splitlines())),
            ("audit lines", *_count(audit.read_text(encoding="utf-8").splitlines())),
            ("/metrics lines", *_count(metrics.splitlines())),
        ]
    print(f"{'channel':<24} {'items':>7} {'with the key':>13}")
    for name, items, leaks in rows:
        print(f"{name:<24} {items:>7} {leaks:>13}")
    return 1 if any(leaks for name, _, leaks in rows if "401" not in name) else 0


def _count(lines: list[str]) -> tuple[int, int]:
    return len(lines), sum(KEY in line for line in lines)


if __name__ == "__main__":
    raise SystemExit(main())

"""Load test: the HTTP server under concurrent traffic while experts fail.

Starts, on 127.0.0.1 only, the fake OpenAI server (``tests/fake_openai.py``; its
``fake-flaky`` model fails every ``1 / failure-rate``-th call with HTTP 500) and
``domain-router serve`` with a config whose ``math`` expert is that model and whose
``general`` fallback always answers; then sends ``--requests`` questions to
``/router/invoke`` from ``--concurrency`` concurrent clients and prints throughput,
latency percentiles and the number of answers lost (a request that did not end in a
200 with an answer and its routing record). It exits 1 when any answer was lost.

    python benchmarks/load_test.py --requests 5000 --concurrency 64 --failure-rate 0.1

The classifier is the shipped model when present, else ``--model DIR``, else a tiny
checkpoint built on the fly (which measures the serving path, not the model).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from langchain_domain_router.classifier import default_model_path  # noqa: E402
from tests.integration_tests._servers import (  # noqa: E402
    ServerProcess,
    child_env,
    free_port,
    router_config,
    serve_command,
    write_config,
)

QUESTIONS = [
    "미분계수의 정의를 설명해 주세요",
    "정적분과 부정적분의 차이는?",
    "행렬식의 성질을 알려 주세요",
    "극한값을 구하는 방법은?",
]


def model_dir(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    if args.model:
        return Path(args.model), "given"
    if (default_model_path() / "config.json").is_file():
        return default_model_path(), "shipped default"
    from tests.conftest import build_checkpoint

    return build_checkpoint(tmp / "tiny", bias={"Math": 10.0}), "tiny test checkpoint"


async def one_request(
    client: httpx.AsyncClient, index: int, latencies: list[float], outcomes: Counter[str]
) -> None:
    question = f"{QUESTIONS[index % len(QUESTIONS)]} (#{index})"
    start = time.perf_counter()
    try:
        response = await client.post("/router/invoke", json={"input": question})
        body = response.json() if response.status_code == 200 else {}
        output = body.get("output") or {}
        routing = (output.get("response_metadata") or {}).get("routing")
        if output.get("content") and routing:
            outcomes[f"{routing['expert']}/{routing['reason']}"] += 1
        else:
            outcomes[f"lost: HTTP {response.status_code}"] += 1
    except (httpx.HTTPError, ValueError) as exc:
        outcomes[f"lost: {type(exc).__name__}: {exc}"[:120]] += 1
    latencies.append(time.perf_counter() - start)


async def drive(url: str, requests: int, concurrency: int) -> tuple[float, list[float], Counter]:
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    queue = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            for index in queue:  # each index is taken by exactly one worker
                await one_request(client, index, latencies, outcomes)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, latencies, outcomes


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


def scrape(url: str, name: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    pattern = re.compile(rf"^{name}\{{(.*)\}} (\S+)$")
    matches = (pattern.match(line) for line in text.splitlines())
    return {m.group(1): float(m.group(2)) for m in matches if m}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--failure-rate", type=float, default=0.1, help="expert calls failing")
    parser.add_argument("--retries", type=int, default=0, help="expert retries before fallback")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--model", help="classifier model directory")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model, model_kind = model_dir(args, tmp)
        fake_port, port = free_port(), free_port()
        fake = ServerProcess(
            [sys.executable, "-m", "tests.fake_openai", "--port", str(fake_port)]
            + ["--failure-rate", str(args.failure_rate)],
            port=fake_port,
            log_path=tmp / "fake.log",
            ready_path="/stats",
        ).wait_ready()
        config = router_config(
            model,
            f"{fake.url}/v1",
            expert_model="fake-flaky",
            timeout_s=10.0,
            max_retries=args.retries,
        )
        path = write_config(tmp / "router.yaml", config)
        command = serve_command(path, port, "--workers", str(args.workers))
        server = ServerProcess(command, port=port, log_path=tmp / "server.log", env=child_env())
        try:
            server.wait_ready(timeout_s=300)
            asyncio.run(drive(server.url, min(args.concurrency, 32), args.concurrency))  # warm-up
            before = scrape(server.url, "domain_router_fallbacks_total")
            seconds, latencies, outcomes = asyncio.run(
                drive(server.url, args.requests, args.concurrency)
            )
            after = scrape(server.url, "domain_router_fallbacks_total")
            calls = httpx.get(f"{fake.url}/stats", timeout=10).json()
        finally:
            server.stop()
            fake.stop()
        problems = [
            line
            for line in server.log_path.read_text(errors="replace").splitlines()
            if re.search(r"error|exception|traceback", line, re.IGNORECASE)
            and not line.startswith("expert 'math' failed")  # the injected failures
        ]

    lost = sum(count for outcome, count in outcomes.items() if outcome.startswith("lost"))
    fallbacks = {key: after[key] - before.get(key, 0) for key in after}
    rows = [
        ("classifier", f"{model_kind} ({model})"),
        ("requests", args.requests),
        ("concurrency", args.concurrency),
        ("server workers", args.workers),
        ("expert failure rate", f"{args.failure_rate:.0%} (retries {args.retries})"),
        ("wall time", f"{seconds:.1f} s"),
        ("throughput", f"{args.requests / seconds:.1f} req/s"),
        ("latency p50", f"{percentile(latencies, 50) * 1000:.0f} ms"),
        ("latency p90", f"{percentile(latencies, 90) * 1000:.0f} ms"),
        ("latency p99", f"{percentile(latencies, 99) * 1000:.0f} ms"),
        ("latency max", f"{max(latencies) * 1000:.0f} ms"),
        ("fake upstream calls", dict(sorted(calls.items()))),
        ("fallbacks (metrics)", {k: int(v) for k, v in fallbacks.items() if v}),
        ("answers (expert/reason)", dict(sorted(outcomes.items()))),
        ("answers lost", lost),
    ]
    width = max(len(name) for name, _ in rows)
    print("| " + "metric".ljust(width) + " | value |")
    print("|-" + "-" * width + "-|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    if problems:
        print(f"\nserver log: {len(problems)} error lines, the last ones:")
        print("\n".join(problems[-10:]))
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())

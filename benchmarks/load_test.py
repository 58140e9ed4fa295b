"""Load test: the HTTP server under concurrent traffic while experts fail.

Starts, on 127.0.0.1 only, the fake OpenAI server (``tests/fake_openai.py``; its
``fake-flaky`` model fails every ``1 / failure-rate``-th call with HTTP 500 and hangs
on every ``1 / hang-rate``-th call, past the expert's ``--expert-timeout``) and
``domain-router serve`` with an audit log and a config whose ``math`` expert is that
model and whose ``general`` fallback always answers; then sends ``--requests``
questions to ``/router/invoke`` from ``--concurrency`` concurrent clients and prints
throughput, latency percentiles, fallbacks by reason and the number of answers lost
(a request that did not end in a 200 with an answer and its routing record), and
checks that every answer has its line in the audit log. With ``--kill-worker-at F``
(and ``--workers 2`` or more) one worker is killed (SIGKILL) once a fraction ``F`` of
the requests is done; uvicorn starts a new one, and a request whose connection the
kill reset is sent again (up to ``--resend`` times), as a client or load balancer
would: a question without a thread changes nothing when asked twice. A request that
times out is never resent (the server is still working on it); the client waits 30 s
longer than the server's ``--request-timeout``, by which time the server has answered
or refused it. Worker processes are watched throughout: a worker that died other than
by the kill (say, killed by uvicorn's health check) is reported. It exits 1 when any
answer was lost or has no audit line.

``--route openai`` sends the questions to ``/v1/chat/completions`` (``model:
domain-router``) instead of ``/router/invoke``. ``--generator wrk`` drives, with the
compiled ``wrk`` instead of Python clients (which would eat the server's CPU), first a
bare LangServe route serving a trivial Runnable (``benchmarks/_bare_app.py``), then
``/router/invoke``, then ``/v1/chat/completions``, ``--seconds`` each at
``--concurrency`` connections, and prints requests/s and p50/p99 side by side.

    python benchmarks/load_test.py --requests 5000 --concurrency 64 --failure-rate 0.1
    python benchmarks/load_test.py --route openai --requests 5000 --concurrency 64
    python benchmarks/load_test.py --generator wrk --offline --concurrency 64 --seconds 20
    python benchmarks/load_test.py --model tiny --workers 2 --failure-rate 0.1 \\
        --hang-rate 0.05 --expert-timeout 2 --kill-worker-at 0.5

The classifier is ``--model DIR`` (``tiny``: a tiny checkpoint built on the fly, which
routes every question to the flaky ``math`` expert and measures the serving path, not
the model), else the shipped model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
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

JSON = "application/json"
RESENDABLE = (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ConnectTimeout)
"""Errors of a connection that broke (or never opened): the request may be sent again."""
QUESTIONS = [
    "미분계수의 정의를 설명해 주세요",
    "정적분과 부정적분의 차이는?",
    "행렬식의 성질을 알려 주세요",
    "극한값을 구하는 방법은?",
]


def model_dir(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    if args.model == "tiny" or not (args.model or (default_model_path() / "config.json").is_file()):
        from tests.conftest import build_checkpoint

        return build_checkpoint(tmp / "tiny", bias={"Math": 10.0}), "tiny test checkpoint"
    if args.model:
        return Path(args.model), "given"
    return default_model_path(), "shipped default"


def _kind(routing: dict) -> str:
    """``expert/reason``, with an expert failure told apart as a timeout or an error."""
    kind = f"{routing['expert']}/{routing['reason']}"
    if routing["reason"] == "expert_error":
        kind += " (timeout)" if "timed out" in str(routing.get("error")) else " (error)"
    return kind


class Run:
    """What one driven run saw."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.outcomes: Counter[str] = Counter()
        self.request_ids: list[str] = []
        self.resent = 0
        self.done = 0
        self.workers: set[int] = set()
        self.killed = 0
        self.seconds = 0.0


ROUTES = {
    "router": ("/router/invoke", lambda question: {"input": question}),
    "openai": (
        "/v1/chat/completions",
        lambda question: {
            "model": "domain-router",
            "messages": [{"role": "user", "content": question}],
        },
    ),
}
"""``--route``: the path, and the request body of a question."""


def _answer(body: dict) -> tuple[str | None, dict | None]:
    """The answer text and routing record of a ``/router`` or ``/v1`` response body."""
    if "choices" in body:
        return body["choices"][0]["message"]["content"], body.get("routing")
    output = body.get("output") or {}
    return output.get("content"), (output.get("response_metadata") or {}).get("routing")


async def one_request(
    client: httpx.AsyncClient, index: int, run: Run, resend: int, route: str = "router"
) -> None:
    question = f"{QUESTIONS[index % len(QUESTIONS)]} (#{index})"
    path, payload = ROUTES[route]
    start = time.perf_counter()
    for attempt in range(resend + 1):
        try:
            response = await client.post(path, json=payload(question))
        except httpx.TransportError as exc:
            if isinstance(exc, RESENDABLE) and attempt < resend:  # reset by a killed worker
                run.resent += 1
                continue
            run.outcomes[f"lost: {type(exc).__name__}: {exc}"[:120]] += 1
            break
        body = response.json() if response.headers.get("content-type") == JSON else {}
        content, routing = _answer(body)
        if response.status_code == 200 and content and routing:
            run.outcomes[_kind(routing)] += 1
            run.request_ids.append(routing["request_id"])
        elif response.status_code in (429, 503, 504) and (body.get("detail") or body.get("error")):
            run.outcomes[f"clean error: HTTP {response.status_code}"] += 1  # retry later
        else:
            run.outcomes[f"lost: HTTP {response.status_code}"] += 1
        break
    run.latencies.append(time.perf_counter() - start)
    run.done += 1


async def drive(
    url: str,
    requests: int,
    concurrency: int,
    resend: int = 0,
    run: Run | None = None,
    max_seconds: float = float("inf"),
    timeout_s: float = 150.0,
    route: str = "router",
) -> Run:
    run = run or Run()
    queue = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:
        start = time.perf_counter()

        async def worker() -> None:
            for index in queue:  # each index is taken by exactly one worker
                if time.perf_counter() - start > max_seconds:
                    break  # out of time: the report gives the true count
                await one_request(client, index, run, resend, route)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - start
        return run


def worker_pids(supervisor: int) -> set[int]:
    """The uvicorn worker processes under ``supervisor`` (Linux ``/proc``)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return {int(pid) for pid in children if b"spawn_main" in _cmdline(pid)}


def _cmdline(pid: str) -> bytes:
    """A process's command line; empty once it has gone (it may die as it is listed)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def watch_workers(supervisor: int, run: Run) -> None:
    """Note every worker process that serves during the run."""
    while not run.seconds:
        run.workers |= worker_pids(supervisor)
        await asyncio.sleep(0.2)


async def kill_one_worker(
    supervisor: int, run: Run, after: int, after_s: float, log: list[str]
) -> None:
    """SIGKILL one worker once ``after`` requests are done (or ``after_s`` passed)."""
    start = time.perf_counter()
    while run.done < after and time.perf_counter() - start < after_s:
        if run.seconds:  # the run is over
            return
        await asyncio.sleep(0.05)
    before = worker_pids(supervisor)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    run.killed += 1
    killed_at = time.perf_counter()
    log.append(f"killed worker {victim} after {run.done} requests")
    while not (worker_pids(supervisor) - before):
        await asyncio.sleep(0.1)
    restarted = min(worker_pids(supervisor) - before)
    seconds = time.perf_counter() - killed_at
    log.append(f"uvicorn started worker {restarted} {seconds:.1f} s later")


async def drive_with_kill(
    url: str, args: argparse.Namespace, supervisor: int, log: list[str]
) -> Run:
    run = Run()
    timeout_s = args.request_timeout + 30  # past the server's own answer (504) or refusal
    drive_run = drive(
        url,
        args.requests,
        args.concurrency,
        args.resend,
        run,
        args.max_seconds,
        timeout_s,
        args.route,
    )
    jobs = [drive_run, watch_workers(supervisor, run)]
    if args.kill_worker_at:
        after = round(args.kill_worker_at * args.requests)
        jobs.append(
            kill_one_worker(supervisor, run, after, args.kill_worker_at * args.max_seconds, log)
        )
    await asyncio.gather(*jobs)
    return run


def missing_audit_lines(path: Path, request_ids: list[str]) -> int:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    logged = {json.loads(line)["request_id"] for line in lines if line.strip()}
    return sum(request_id not in logged for request_id in request_ids)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


def scrape(url: str, name: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    pattern = re.compile(rf"^{name}(?:\{{(.*)\}})? (\S+)$")
    matches = (pattern.match(line) for line in text.splitlines())
    return {m.group(1) or "": float(m.group(2)) for m in matches if m}


_DURATION = "domain_router_http_request_duration_seconds_bucket"


def server_quantile(
    before: dict[str, float], after: dict[str, float], q: float, path: str = "/router/invoke"
) -> float:
    """The ``q`` quantile (0-1) of the run's ``path`` durations, server-measured.

    Read from the request-duration histogram's buckets (counts after the run minus before
    it), interpolated inside a bucket as Prometheus's ``histogram_quantile`` does.
    """
    counts = []
    for labels, value in after.items():
        if f'endpoint="{path}"' in labels:
            bound = float(re.search(r'le="([^"]+)"', labels).group(1))  # type: ignore[union-attr]
            counts.append((bound, value - before.get(labels, 0.0)))
    counts.sort()
    rank, low, below = q * counts[-1][1], 0.0, 0.0
    for bound, count in counts:
        if count >= rank:
            if bound == float("inf"):
                return low
            return low + (bound - low) * (rank - below) / max(count - below, 1e-9)
        low, below = bound, count
    return low


def start_servers(
    args: argparse.Namespace, tmp: Path
) -> tuple[ServerProcess | None, ServerProcess, Path, str, Path]:
    """Start the fake upstream (unless ``--offline``) and the router server, both ready.

    Returns:
        The fake upstream, the server, its audit file, and the classifier's kind and path.
    """
    model, model_kind = model_dir(args, tmp)
    fake_port, port = free_port(), free_port()
    fake = None
    if not args.offline:
        fake = ServerProcess(
            [sys.executable, "-m", "tests.fake_openai", "--port", str(fake_port)]
            + ["--failure-rate", str(args.failure_rate), "--hang-rate", str(args.hang_rate)]
            + ["--hang-s", str(args.expert_timeout * 3)],
            port=fake_port,
            log_path=tmp / "fake.log",
            ready_path="/stats",
        ).wait_ready()
    config = router_config(
        model,
        f"{fake.url}/v1" if fake else "http://127.0.0.1:9/v1",
        expert_model="fake-flaky",
        timeout_s=args.expert_timeout,
        max_retries=args.retries,
    )
    if args.offline:
        for profile in [*config["experts"], config["fallback"]]:
            profile.update(model="offline", model_kwargs={})
    path = write_config(tmp / "router.yaml", config)
    audit = tmp / "audit.jsonl"
    options = ("--workers", str(args.workers), "--audit-log", str(audit))
    options += ("--request-timeout-s", str(args.request_timeout))
    command = serve_command(path, port, *options)
    server = ServerProcess(command, port=port, log_path=tmp / "server.log", env=child_env())
    try:
        server.wait_ready(timeout_s=900)  # a shared, busy machine loads slowly
    except RuntimeError:
        if fake:
            fake.stop()
        raise
    return fake, server, audit, model_kind, model


def compare_with_wrk(args: argparse.Namespace) -> int:
    """``/router/invoke``, ``/v1/chat/completions`` and a bare LangServe route under ``wrk``.

    Each target gets ``--seconds`` of ``--concurrency`` connections after a warm-up, one
    after the other in the same run on the same machine, in two passes (the second in
    the opposite order); the bare route
    (``benchmarks/_bare_app.py``) serves a Runnable that returns its input.
    """
    from benchmarks._wrk import find_wrk, run_wrk

    find_wrk()
    question = f"{QUESTIONS[0]} #N#"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fake, server, _, model_kind, model = start_servers(args, tmp)
        bare_port = free_port()
        bare = ServerProcess(
            [sys.executable, "-m", "uvicorn", "benchmarks._bare_app:app"]
            + ["--host", "127.0.0.1", "--port", str(bare_port), "--log-level", "warning"],
            port=bare_port,
            log_path=tmp / "bare.log",
            ready_path="/docs",
        )
        targets = [
            ("bare LangServe (echo Runnable)", f"{bare.url}/echo/invoke", {"input": question}),
            ("/router/invoke", f"{server.url}/router/invoke", ROUTES["router"][1](question)),
            (
                "/v1/chat/completions",
                f"{server.url}/v1/chat/completions",
                ROUTES["openai"][1](question),
            ),
        ]
        rows = []
        try:
            bare.wait_ready()
            for _, url, body in targets:  # warm-up
                run_wrk(url, body, connections=args.concurrency, seconds=3, script_dir=tmp)
            # Two passes in opposite orders: on a shared machine the load drifts, and a
            # route measured only first or only last would carry that drift alone.
            for number, order in enumerate([targets, targets[::-1]], start=1):
                for name, url, body in order:
                    result = run_wrk(
                        url,
                        body,
                        connections=args.concurrency,
                        seconds=args.seconds,
                        script_dir=tmp,
                    )
                    rows.append((name, number, result))
        finally:
            bare.stop()
            server.stop()
            if fake:
                fake.stop()
    experts = "offline" if args.offline else "fake OpenAI server"
    print(f"classifier: {model_kind} ({model}); experts: {experts}; workers: {args.workers}")
    print(f"wrk -t1 -c{args.concurrency} -d{args.seconds:g}s, after a 3 s warm-up per target\n")
    print("| route | pass | req/s | p50 (ms) | p99 (ms) | requests | non-2xx | socket errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, number, r in sorted(rows, key=lambda row: [t[0] for t in targets].index(row[0])):
        print(
            f"| {name} | {number} | {r.rate:.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
            f"| {r.requests} | {r.non_2xx} | {r.socket_errors} |"
        )
    return 1 if any(r.non_2xx or r.socket_errors for _, _, r in rows) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--failure-rate", type=float, default=0.1, help="expert calls failing")
    parser.add_argument("--hang-rate", type=float, default=0.0, help="expert calls hanging")
    parser.add_argument("--expert-timeout", type=float, default=10.0, help="seconds (timeout_s)")
    parser.add_argument("--retries", type=int, default=0, help="expert retries before fallback")
    parser.add_argument(
        "--request-timeout", type=float, default=120.0, help="the server's request_timeout_s"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--kill-worker-at", type=float, default=0.0, help="fraction done")
    parser.add_argument("--resend", type=int, default=2, help="resends after a reset")
    parser.add_argument("--model", help="classifier model directory, or 'tiny'")
    parser.add_argument("--max-seconds", type=float, default=float("inf"), help="then stop")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="offline experts (no upstream server, no failures): the serving path alone",
    )
    parser.add_argument(
        "--route",
        choices=sorted(ROUTES),
        default="router",
        help="router: /router/invoke; openai: /v1/chat/completions",
    )
    parser.add_argument(
        "--generator",
        choices=["python", "wrk"],
        default="python",
        help="wrk: compare /router/invoke, /v1/chat/completions and a bare LangServe route",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="wrk: seconds per route")
    args = parser.parse_args()
    if args.kill_worker_at and args.workers < 2:
        parser.error("--kill-worker-at needs --workers 2 or more")

    if args.generator == "wrk":
        return compare_with_wrk(args)
    path = ROUTES[args.route][0]
    kills: list[str] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fake, server, audit, model_kind, model = start_servers(args, tmp)
        try:
            asyncio.run(  # warm-up
                drive(
                    server.url,
                    min(args.concurrency, 32),
                    args.concurrency,
                    route=args.route,
                )
            )
            before = scrape(server.url, "domain_router_fallbacks_total")
            durations_before = scrape(server.url, _DURATION)
            run = asyncio.run(drive_with_kill(server.url, args, server.process.pid, kills))
            after = scrape(server.url, "domain_router_fallbacks_total")
            durations = scrape(server.url, _DURATION)
            in_flight = scrape(server.url, "domain_router_http_requests_in_flight")
            calls = httpx.get(f"{fake.url}/stats", timeout=10).json() if fake else {}
        finally:
            server.stop()
            if fake:
                fake.stop()
        missing = missing_audit_lines(audit, run.request_ids)
        problems = [
            line
            for line in server.log_path.read_text(errors="replace").splitlines()
            if re.search(r"error|exception|traceback", line, re.IGNORECASE)
            and not line.startswith("expert 'math' failed")  # the injected failures
        ]

    def upstream(text: str) -> str:
        return "n/a (offline experts)" if args.offline else text

    lost = sum(count for outcome, count in run.outcomes.items() if outcome.startswith("lost"))
    fallbacks = {key: after[key] - before.get(key, 0) for key in after}
    rows = [
        ("classifier", f"{model_kind} ({model})"),
        ("route", path),
        ("requests", f"{run.done} of {args.requests}"),
        ("concurrency", args.concurrency),
        ("server workers", args.workers),
        ("experts", "offline (no upstream)" if args.offline else "fake OpenAI server"),
        ("expert failure rate", upstream(f"{args.failure_rate:.0%} (retries {args.retries})")),
        ("expert hang rate", upstream(f"{args.hang_rate:.0%} (timeout {args.expert_timeout:g} s)")),
        ("worker kill", "; ".join(kills) or "none"),
        # uvicorn spawns worker processes only for --workers 2 or more.
        ("worker processes that served", len(run.workers) if args.workers > 1 else "n/a"),
        (
            "workers that died unasked",
            len(run.workers) - args.workers - run.killed if args.workers > 1 else "n/a",
        ),
        ("wall time", f"{run.seconds:.1f} s"),
        ("throughput", f"{run.done / run.seconds:.1f} req/s"),
        ("latency p50", f"{percentile(run.latencies, 50) * 1000:.0f} ms"),
        ("latency p90", f"{percentile(run.latencies, 90) * 1000:.0f} ms"),
        ("latency p99", f"{percentile(run.latencies, 99) * 1000:.0f} ms"),
        ("latency max", f"{max(run.latencies) * 1000:.0f} ms"),
        (
            "server-measured p50 / p99 (histogram)",
            " / ".join(
                f"{server_quantile(durations_before, durations, q, path) * 1000:.0f} ms"
                for q in (0.5, 0.99)
            ),
        ),
        ("fake upstream calls", dict(sorted(calls.items()))),
        ("fallbacks (metrics)", {k: int(v) for k, v in fallbacks.items() if v}),
        ("answers (expert/reason)", dict(sorted(run.outcomes.items()))),
        ("answers", len(run.request_ids)),
        ("requests resent after a reset", run.resent),
        ("clean errors (503/504)", sum(v for k, v in run.outcomes.items() if "clean" in k)),
        ("answers lost", lost),
        ("answers without an audit line", missing),
        ("in-flight gauge after the run", sum(in_flight.values())),
    ]
    width = max(len(name) for name, _ in rows)
    print("| " + "metric".ljust(width) + " | value |")
    print("|-" + "-" * width + "-|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    if problems:
        print(f"\nserver log: {len(problems)} error lines, the last ones:")
        print("\n".join(problems[-10:]))
    return 1 if lost or missing else 0


if __name__ == "__main__":
    raise SystemExit(main())

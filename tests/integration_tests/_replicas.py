"""Router replicas on one PostgreSQL behind nginx, and a load run that kills one of them.

Used by ``test_replicas.py`` (which asserts the invariants) and
``benchmarks/replica_fault_run.py`` (which prints the table). Everything listens on
127.0.0.1: each replica is ``domain-router serve --checkpointer postgres:DSN`` on a free
port with an audit file of its own per process; nginx runs from a config file in the
run's directory, round robin, and passes a request to the next replica only when it
could not reach one (``proxy_next_upstream error``: a POST it has sent is never sent
twice). A client that gets a 502 (its replica died mid-request) sends the request again
with the same ``X-Request-ID``; the router answers it once.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from langchain_domain_router.server._idempotency import REPLAYED_HEADER
from tests.integration_tests._servers import ServerProcess, child_env, free_port, serve_command

REPLICA_HEADER = "x-domain-router-replica"
START_S = 300.0
"""How long a replica may take to load: three at once on a busy 2-core machine are slow."""
RESEND_STATUSES = (502, 503, 504)
"""Answers after which the client sends the request again: the balancer found no live
replica, or a replica was busy or out of time."""

NGINX_CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_body_buffer_size 1m;
    upstream routers {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://routers;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_read_timeout 300s;
            # Only a replica that could not be reached: a POST once sent is not resent.
            proxy_next_upstream error;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"""


def nginx_missing() -> str | None:
    """Why the replica tests cannot run here, or ``None``."""
    if shutil.which("nginx") is None:
        return "nginx is not installed (apt-get install nginx)"
    return None


class Cluster:
    """``replicas`` router processes behind one nginx, all on 127.0.0.1."""

    def __init__(self, directory: Path, config: Path, dsn: str, *, replicas: int = 3) -> None:
        self.directory = directory
        self.config = config
        self.dsn = dsn
        self.ports = [free_port() for _ in range(replicas)]
        self.processes: list[ServerProcess | None] = [None] * replicas
        self.generations = [0] * replicas
        self.names = [""] * replicas
        self.audit_files: list[Path] = []
        self.nginx: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> Cluster:
        try:
            for index in range(len(self.ports)):
                self.start(index)
            for process in self.processes:
                assert process is not None
                process.wait_ready(START_S)
            self._start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, index: int) -> ServerProcess:
        """Start replica ``index`` (again), with an audit file of its own."""
        self.generations[index] += 1
        name = f"replica{index}-{self.generations[index]}"
        audit = self.directory / f"audit-{name}.jsonl"
        self.audit_files.append(audit)
        options = ["--checkpointer", f"postgres:{self.dsn}", "--audit-log", str(audit)]
        command = serve_command(self.config, self.ports[index], *options)
        process = ServerProcess(
            command,
            port=self.ports[index],
            log_path=self.directory / f"{name}.log",
            env=child_env(DOMAIN_ROUTER_REPLICA_NAME=name),
        )
        self.processes[index], self.names[index] = process, name
        return process

    def kill(self, index: int) -> None:
        """SIGKILL replica ``index``: no shutdown, its requests in flight cut off."""
        process = self.processes[index]
        assert process is not None
        process.process.kill()
        process.process.wait(timeout=15)
        process.stop()

    def _start_nginx(self) -> None:
        port = free_port()
        servers = "\n".join(
            f"        server 127.0.0.1:{replica} max_fails=1 fail_timeout=2s;"
            for replica in self.ports
        )
        conf = self.directory / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=self.directory, servers=servers, port=port))
        self._nginx_log = open(self.directory / "nginx.out", "wb")  # noqa: SIM115 - in stop()
        self.nginx = subprocess.Popen(  # noqa: S603 - a fixed command line
            ["nginx", "-c", str(conf), "-p", str(self.directory), "-g", "daemon off;"],  # noqa: S607
            stdout=self._nginx_log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.nginx.poll() is None:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        msg = f"nginx did not start: {(self.directory / 'nginx.out').read_text(errors='replace')}"
        raise RuntimeError(msg)

    def stop(self) -> None:
        if self.nginx is not None:
            if self.nginx.poll() is None:
                self.nginx.terminate()
                self.nginx.wait(timeout=15)
            self._nginx_log.close()
        for process in self.processes:
            if process is not None:
                process.stop()

    def metrics(self, index: int) -> dict[str, float]:
        """Replica ``index``'s ``/metrics`` samples, straight from it (not through nginx)."""
        text = httpx.get(f"http://127.0.0.1:{self.ports[index]}/metrics", timeout=10).text
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def audit_lines(self, name: str | None = None) -> list[dict[str, Any]]:
        """The audit lines of replica process ``name``, or of every one (the killed too)."""
        lines = []
        for path in self.audit_files:
            if path.exists() and name in (None, path.stem.removeprefix("audit-")):
                lines += [json.loads(line) for line in path.read_text().splitlines()]
        return lines


def question(thread: str, turn: int) -> str:
    return f"미분 질문 {turn}번 ({thread})"


@dataclass
class LoadRun:
    """What a load run saw, request by request."""

    threads: list[str]
    turns: int
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each answered request's id: its answer, replica, latency and attempts."""
    resent: int = 0
    """Requests sent again after a 502/503/504 or a broken connection."""
    statuses: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    killed_after: int = 0
    restart_s: float = 0.0
    seconds: float = 0.0

    @property
    def request_ids(self) -> set[str]:
        return {f"{thread}-{turn}" for thread in self.threads for turn in range(1, self.turns + 1)}

    @property
    def sent(self) -> int:
        return len(self.threads) * self.turns

    def by_replica(self) -> Counter[str]:
        return Counter(answer["replica"] for answer in self.answers.values())

    def percentile_ms(self, fraction: float) -> float:
        latencies = sorted(answer["seconds"] for answer in self.answers.values())
        if len(latencies) < 2:
            return 1000 * sum(latencies)
        return (
            1000
            * statistics.quantiles(latencies, n=100, method="inclusive")[round(fraction * 100) - 1]
        )


async def _ask(
    client: httpx.AsyncClient, run: LoadRun, thread: str, turn: int, attempts: int
) -> None:
    request_id = f"{thread}-{turn}"  # what ``LoadRun.request_ids`` lists
    body = {"input": question(thread, turn), "config": {"configurable": {"thread_id": thread}}}
    start = time.perf_counter()
    for attempt in range(1, attempts + 1):
        try:
            response = await client.post(
                "/router/invoke", json=body, headers={"X-Request-ID": request_id}
            )
        except httpx.TransportError as exc:
            run.statuses[type(exc).__name__] += 1
        else:
            run.statuses[str(response.status_code)] += 1
            if response.status_code == 200:
                run.answers[request_id] = {
                    "content": response.json()["output"]["content"],
                    "replica": response.headers[REPLICA_HEADER],
                    "replayed": response.headers.get(REPLAYED_HEADER) == "true",
                    "seconds": time.perf_counter() - start,
                    "attempts": attempt,
                }
                return
            if response.status_code not in RESEND_STATUSES:
                break
        if attempt < attempts:
            run.resent += 1
            await asyncio.sleep(0.2 * attempt)
    run.lost.append(request_id)


async def drive(
    cluster: Cluster,
    *,
    threads: int,
    turns: int,
    concurrency: int,
    kill_at: float | None = 0.3,
    attempts: int = 8,
) -> LoadRun:
    """Send ``threads`` conversations of ``turns`` turns each, ``concurrency`` at a time.

    The turns of one thread go one after another (each waits for the answer before);
    threads run side by side. Once a fraction ``kill_at`` of the requests is answered,
    replica 0 is SIGKILLed and started again on its port.
    """
    run = LoadRun([f"t{uuid.uuid4().hex[:8]}-{i}" for i in range(threads)], turns)
    pending = iter(run.threads)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def converse(client: httpx.AsyncClient) -> None:
        for thread in pending:  # each thread is taken by exactly one task
            for turn in range(1, turns + 1):
                await _ask(client, run, thread, turn, attempts)

    async def kill_and_restart() -> None:
        while len(run.answers) < (kill_at or 0) * run.sent:
            await asyncio.sleep(0.05)
        run.killed_after = len(run.answers)
        cluster.kill(0)
        start = time.perf_counter()
        await asyncio.to_thread(lambda: cluster.start(0).wait_ready(START_S))
        run.restart_s = time.perf_counter() - start

    async with httpx.AsyncClient(base_url=cluster.url, timeout=180, limits=limits) as client:
        start = time.perf_counter()
        killer = asyncio.create_task(kill_and_restart()) if kill_at is not None else None
        await asyncio.gather(*(converse(client) for _ in range(concurrency)))
        run.seconds = time.perf_counter() - start
        if killer is not None:
            await killer
    return run


def thread_histories(dsn: str, threads: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Each thread's messages (type, content) as PostgreSQL holds them now."""
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(dsn) as saver:
        histories = {}
        for thread in threads:
            found = saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}})
            messages = found.checkpoint["channel_values"].get("messages", []) if found else []
            histories[thread] = [(message.type, str(message.content)) for message in messages]
        return histories


def broken_histories(run: LoadRun, dsn: str) -> dict[str, list[tuple[str, str]]]:
    """The threads whose history is not exactly their turns, each once, in order."""
    broken = {}
    for thread, history in thread_histories(dsn, run.threads).items():
        asked = [question(thread, turn) for turn in range(1, run.turns + 1)]
        answered = [
            run.answers.get(f"{thread}-{turn}", {}).get("content")
            for turn in range(1, run.turns + 1)
        ]
        expected = [pair for turn in zip(asked, answered, strict=True) for pair in _turn(*turn)]
        if history != expected:
            broken[thread] = history
    return broken


def _turn(asked: str, answered: str | None) -> list[tuple[str, str]]:
    return [("human", asked), ("ai", answered or "(no answer)")]


def metric(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for sample, value in samples.items():
        base, _, rest = sample.partition("{")
        if base == name and all(f'{key}="{value_}"' in rest for key, value_ in labels.items()):
            total += value
    return total

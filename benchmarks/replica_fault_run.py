"""Fault run across replicas: nginx, N ``serve`` processes on one PostgreSQL, one SIGKILLed.

Starts on 127.0.0.1 the fake OpenAI server (``fake-flaky``: every ``1 / failure-rate``-th
expert call fails with HTTP 500, and the fallback answers), ``--replicas`` processes of
``domain-router serve --checkpointer postgres:DSN`` (each with its own audit file) and
nginx in front of them (round robin; a request goes to the next replica only when the
first could not be reached). Then ``--threads`` conversations of ``--turns`` turns each
are sent, ``--concurrency`` at a time, each turn with its own ``X-Request-ID``; once a
fraction ``--kill-at`` of the requests is answered, replica 0 is killed with SIGKILL and
started again. A client that gets a 502 (or 503/504, or a broken connection) sends the
same request again, with the same id. It prints one table and exits 1 when an answer
was lost, a thread's history is not exactly its turns, or an answer has no audit line.

    eval "$(make -s postgres)"      # or point DOMAIN_ROUTER_TEST_POSTGRES_DSN elsewhere
    python benchmarks/replica_fault_run.py --threads 200 --turns 10 --concurrency 32

Needs nginx on PATH. The classifier is a tiny checkpoint built on the fly that sends
every question to the flaky ``math`` expert: this measures the serving path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.conftest import build_checkpoint  # noqa: E402
from tests.fake_openai import FakeOpenAIServer  # noqa: E402
from tests.integration_tests._replicas import (  # noqa: E402
    Cluster,
    LoadRun,
    broken_histories,
    drive,
    metric,
    nginx_missing,
)
from tests.integration_tests._servers import router_config, write_config  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--threads", type=int, default=200)
    p.add_argument("--turns", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--failure-rate", type=float, default=0.1)
    p.add_argument("--kill-at", type=float, default=0.3, help="fraction answered before the kill")
    p.add_argument("--dsn", default=os.environ.get("DOMAIN_ROUTER_TEST_POSTGRES_DSN"))
    args = p.parse_args()
    if not args.dsn:
        sys.exit('no PostgreSQL: eval "$(make -s postgres)" or pass --dsn')
    if problem := nginx_missing():
        sys.exit(problem)
    with (
        tempfile.TemporaryDirectory(prefix="replica-fault-run-") as tmp,
        FakeOpenAIServer(failure_rate=args.failure_rate) as upstream,
    ):
        directory = Path(tmp)
        model = build_checkpoint(directory / "tiny", bias={"Math": 10.0})
        config = router_config(model, upstream.base_url, expert_model="fake-flaky", max_retries=0)
        config_path = write_config(directory / "router.yaml", config)
        with Cluster(directory, config_path, args.dsn, replicas=args.replicas) as cluster:
            run = asyncio.run(
                drive(
                    cluster,
                    threads=args.threads,
                    turns=args.turns,
                    concurrency=args.concurrency,
                    kill_at=args.kill_at,
                )
            )
            return report(cluster, run, args)


def report(cluster: Cluster, run: LoadRun, args: argparse.Namespace) -> int:
    broken = broken_histories(run, args.dsn)
    audit = cluster.audit_lines()
    audited = {line["http_request_id"] for line in audit}
    unaudited = len(set(run.answers) - audited)
    by_replica = run.by_replica()
    live = []
    for index, name in enumerate(cluster.names):
        samples = cluster.metrics(index)
        served = metric(
            samples, "domain_router_http_requests_total", endpoint="/router/invoke", status="200"
        )
        routed = metric(samples, "domain_router_routes_total")
        live.append(
            f"{name}: {served:.0f} answers, {routed:.0f} routed, "
            f"{len(cluster.audit_lines(name))} audit lines"
        )
    fallbacks = sum(line["reason"] == "expert_error" for line in audit)
    replayed = sum(answer["replayed"] for answer in run.answers.values())
    rows = [
        ("replicas behind nginx", f"{args.replicas} (replica 0 SIGKILLed and restarted)"),
        (
            "requests sent",
            f"{run.sent:,} ({args.threads} threads x {args.turns} turns, "
            f"{args.concurrency} concurrent)",
        ),
        ("answered", f"{len(run.answers):,}"),
        ("lost", f"{len(run.lost)}"),
        ("resent by the client (same X-Request-ID)", f"{run.resent}"),
        ("answers replayed from a stored answer or the thread", f"{replayed}"),
        (
            "HTTP statuses / errors seen",
            ", ".join(f"{k}: {v}" for k, v in sorted(run.statuses.items())),
        ),
        ("threads with duplicated or lost turns", f"{len(broken)} of {len(run.threads)}"),
        ("answers without an audit line", f"{unaudited}"),
        (
            "audit lines (all processes) / distinct request ids",
            f"{len(audit):,} / {len(audited):,} (fallbacks after a failed expert: {fallbacks})",
        ),
        (
            "answers per replica (header)",
            ", ".join(f"{k}: {v}" for k, v in sorted(by_replica.items())),
        ),
        ("live replicas' /metrics", "; ".join(live)),
        ("kill", f"after {run.killed_after:,} answers; back in {run.restart_s:.1f} s"),
        ("latency p50 / p99", f"{run.percentile_ms(0.5):,.0f} / {run.percentile_ms(0.99):,.0f} ms"),
        ("wall time, throughput", f"{run.seconds:.1f} s, {run.sent / run.seconds:.1f} req/s"),
    ]
    print("| metric | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 1 if run.lost or broken or unaudited else 0


if __name__ == "__main__":
    sys.exit(main())

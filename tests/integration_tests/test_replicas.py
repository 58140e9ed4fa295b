"""Three replicas on one PostgreSQL behind nginx: threads span replicas, a killed one loses nothing.

Needs nginx and ``DOMAIN_ROUTER_TEST_POSTGRES_DSN`` (``eval "$(make -s postgres)"``);
CI has both. The load run is sized to finish in about two minutes on 2 shared cores;
``benchmarks/replica_fault_run.py`` runs the same scenario at full size.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fake_openai import FakeOpenAIServer
from tests.integration_tests._replicas import (
    REPLICA_HEADER,
    Cluster,
    broken_histories,
    drive,
    metric,
    nginx_missing,
    question,
)
from tests.integration_tests._servers import router_config, write_config

POSTGRES_DSN = os.environ.get("DOMAIN_ROUTER_TEST_POSTGRES_DSN", "")
pytestmark = [
    pytest.mark.skipif(not POSTGRES_DSN, reason="set DOMAIN_ROUTER_TEST_POSTGRES_DSN to run this"),
    pytest.mark.skipif(bool(nginx_missing()), reason=str(nginx_missing())),
]
THREADS, TURNS, CONCURRENCY = 40, 10, 16


@pytest.fixture(scope="module")
def flaky_upstream() -> Iterator[FakeOpenAIServer]:
    """Every tenth expert call fails with HTTP 500; the fallback then answers."""
    with FakeOpenAIServer(failure_rate=0.1) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(
    math_checkpoint: Path,
    flaky_upstream: FakeOpenAIServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """Three replicas behind nginx, shared by the tests of this module (in order)."""
    directory = tmp_path_factory.mktemp("replicas")
    config = router_config(
        math_checkpoint, flaky_upstream.base_url, expert_model="fake-flaky", max_retries=0
    )
    path = write_config(directory / "router.yaml", config)
    with Cluster(directory, path, POSTGRES_DSN) as running:
        yield running


def counts(cluster: Cluster, index: int) -> tuple[float, float, float, int]:
    """Replica ``index``: answers and routes on ``/metrics``, fallbacks, audit lines."""
    samples = cluster.metrics(index)
    lines = cluster.audit_lines(cluster.names[index])
    return (
        metric(
            samples, "domain_router_http_requests_total", endpoint="/router/invoke", status="200"
        ),
        metric(samples, "domain_router_routes_total"),
        metric(samples, "domain_router_fallbacks_total")
        - sum(line["reason"] == "expert_error" for line in lines),
        len(lines),
    )


def test_one_thread_alternates_between_replicas_and_keeps_its_history(
    cluster: Cluster, flaky_upstream: FakeOpenAIServer
):
    thread = f"alternating-{os.getpid()}-{id(cluster)}"
    config = {"configurable": {"thread_id": thread}}
    replicas = []
    with httpx.Client(base_url=cluster.url, timeout=60) as client:
        for turn in range(1, 7):
            body = {"input": question(thread, turn), "config": config}
            response = client.post("/router/invoke", json=body)
            assert response.status_code == 200, response.text
            replicas.append(response.headers[REPLICA_HEADER])
            # The expert (or the fallback after a failure) saw every earlier turn.
            seen = httpx.get(f"{flaky_upstream.base_url[:-3]}/last").json()["messages"]
            asked = [m["content"] for m in seen if m["role"] == "user"]
            assert asked == [question(thread, n) for n in range(1, turn + 1)]
    assert set(replicas) == set(cluster.names)
    assert all(one != two for one, two in zip(replicas, replicas[1:], strict=False))


def test_a_replica_killed_under_load_loses_no_answer_and_no_turn(cluster: Cluster):
    killed = cluster.names[0]
    before = {index: counts(cluster, index) for index in (1, 2)}
    run = asyncio.run(drive(cluster, threads=THREADS, turns=TURNS, concurrency=CONCURRENCY))
    assert run.lost == []
    assert len(run.answers) == run.sent
    assert broken_histories(run, POSTGRES_DSN) == {}
    # Every answer has its audit line; a request runs twice only if its first run was
    # cut off by the kill (its audit line written, its answer never sent).
    audit = [line for line in cluster.audit_lines() if line["http_request_id"] in run.request_ids]
    audited = {line["http_request_id"] for line in audit}
    assert audited == set(run.answers)
    assert len(audit) - len(audited) <= CONCURRENCY
    by_replica = run.by_replica()
    assert by_replica[killed] > 0
    assert sum(by_replica.values()) == run.sent
    # Each replica alive now counts on /metrics what it answered and audited during the
    # run, and its fallbacks match its audit lines; the restarted one counts from zero.
    for index, name in enumerate(cluster.names):
        start = before.get(index, (0.0, 0.0, 0.0, 0))
        answered, routed, fallbacks_off, lines = counts(cluster, index)
        assert answered - start[0] == by_replica[name]
        assert routed - start[1] == lines - start[3]
        assert fallbacks_off == 0

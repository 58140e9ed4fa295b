"""The server as a real process on 127.0.0.1, experts on the fake OpenAI server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langserve import RemoteRunnable

from langchain_domain_router import DomainClassifier, DomainRouter, RouterConfig
from tests.fake_openai import FAIL_MARKER, HANG_MARKER, FakeOpenAIServer
from tests.integration_tests._servers import (
    API_KEY,
    ServerProcess,
    free_port,
    router_config,
    serve_command,
    write_config,
)

QUESTION = "미분계수의 정의를 설명해 주세요"
PRIVATE = "개인정보-7f3a 미분"  # a question whose text must not reach the audit log
LIMITS = ("--max-input-chars", "2000", "--max-batch-size", "4", "--max-body-bytes", "50000")


@pytest.fixture(scope="module")
def config(math_checkpoint: Path, fake_openai: FakeOpenAIServer) -> RouterConfig:
    return RouterConfig.model_validate(router_config(math_checkpoint, fake_openai.base_url))


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="module")
def audit_path(server_dir: Path) -> Path:
    return server_dir / "audit.jsonl"


@pytest.fixture(scope="module")
def server(server_dir: Path, audit_path: Path, config: RouterConfig) -> Iterator[str]:
    """One server process for the module: its base URL."""
    path = write_config(server_dir / "router.yaml", config.model_dump(mode="json"))
    port = free_port()
    command = serve_command(path, port, "--audit-log", str(audit_path), *LIMITS)
    process = ServerProcess(command, port=port, log_path=server_dir / "server.log")
    yield process.wait_ready().url
    process.stop()


def routing_of(message: AIMessage) -> dict:
    return message.response_metadata["routing"]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
        if found == wanted:
            return float(match.group(3))
    return 0.0


def test_health_and_readiness(server):
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/readyz")
    assert ready.status_code == 200 and ready.json()["model_version"] == "tiny-test"


def test_remote_runnable_answers_like_the_local_router(server, config, math_checkpoint):
    remote = RemoteRunnable(f"{server}/router").invoke(QUESTION)
    local = DomainRouter.from_config(
        config, classifier=DomainClassifier.from_pretrained(math_checkpoint)
    ).invoke(QUESTION)
    assert isinstance(remote, AIMessage) and remote.content == local.content
    assert remote.content == f"[fake-scripted] 답변: {QUESTION}"
    keys = ("domain", "expert", "reason", "model", "input_tokens", "output_tokens")
    assert {k: routing_of(remote)[k] for k in keys} == {k: routing_of(local)[k] for k in keys}
    assert routing_of(remote)["estimated_cost_usd"] > 0


@pytest.mark.parametrize(
    "value",
    [[HumanMessage(QUESTION)], {"question": QUESTION}, {"messages": [HumanMessage(QUESTION)]}],
)
def test_remote_runnable_accepts_messages_and_dicts(server, value):
    answer = RemoteRunnable(f"{server}/router").invoke(value)
    assert answer.content.endswith(QUESTION) and routing_of(answer)["expert"] == "math"


def test_batch_over_http(server):
    questions = ["미분", "적분", "극한"]
    answers = RemoteRunnable(f"{server}/router").batch(questions)
    assert [a.content for a in answers] == [f"[fake-scripted] 답변: {q}" for q in questions]
    assert len({routing_of(a)["request_id"] for a in answers}) == 3


def test_stream_over_http(server):
    chunks = list(RemoteRunnable(f"{server}/router").stream(QUESTION))
    assert all(isinstance(c, AIMessageChunk) for c in chunks) and len(chunks) > 3
    assert "".join(str(c.content) for c in chunks) == f"[fake-scripted] 답변: {QUESTION}"
    assert chunks[-1].response_metadata["routing"]["expert"] == "math"


async def test_stream_events_carry_the_routing_events(server):
    remote = RemoteRunnable(f"{server}/router")
    events = [e async for e in remote.astream_events(QUESTION, version="v2")]
    custom = {e["name"]: e["data"] for e in events if e["event"] == "on_custom_event"}
    assert custom["routing_decision"]["expert"] == "math"
    assert custom["routing_complete"]["expert_latency_ms"] is not None
    assert any(e["event"] == "on_chat_model_stream" for e in events)


def test_classify_over_http(server):
    prediction = RemoteRunnable(f"{server}/classify").invoke(QUESTION)
    assert prediction["label"] == "Math" and prediction["supercategory"] == "STEM"
    assert httpx.get(f"{server}/router/playground/").status_code == 200


def test_expert_500_falls_back_to_general(server):
    answer = RemoteRunnable(f"{server}/router").invoke(f"미분 {FAIL_MARKER}")
    routing = routing_of(answer)
    assert answer.content == f"[fake-answer] 답변: 미분 {FAIL_MARKER}"
    assert (routing["reason"], routing["expert"], routing["failed_expert"]) == (
        "expert_error",
        "general",
        "math",
    )
    assert "500" in routing["error"]


def test_expert_500_falls_back_when_streaming(server):
    chunks = list(RemoteRunnable(f"{server}/router").stream(f"적분 {FAIL_MARKER}"))
    assert "".join(str(c.content) for c in chunks).startswith("[fake-answer]")
    assert chunks[-1].response_metadata["routing"]["reason"] == "expert_error"


def test_expert_hang_times_out_then_falls_back(server):
    answer = RemoteRunnable(f"{server}/router", timeout=60).invoke(f"극한 {HANG_MARKER}")
    routing = routing_of(answer)
    assert answer.content.startswith("[fake-answer]")
    assert routing["reason"] == "expert_error" and "timed out" in routing["error"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 422),
        (json.dumps({"input": {"foo": 1}}).encode(), 422),
        (json.dumps({"input": "   "}).encode(), 422),
        (json.dumps({"input": "가" * 2001}).encode(), 422),
        (json.dumps({"input": "가" * 60_000}).encode(), 413),
    ],
    ids=["malformed", "no-question", "empty", "too-long", "huge-body"],
)
def test_bad_requests_are_refused_and_the_server_keeps_serving(server, body, status):
    headers = {"content-type": "application/json"}
    response = httpx.post(f"{server}/router/invoke", content=body, headers=headers)
    assert response.status_code == status
    assert RemoteRunnable(f"{server}/router").invoke("미분").content.endswith("미분")


def test_chunked_huge_body_is_413(server):
    def chunks() -> Iterator[bytes]:  # no content-length: the limit counts as it reads
        yield b'{"input": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = httpx.post(f"{server}/router/invoke", content=chunks())
    assert response.status_code == 413


def test_batch_size_is_limited(server):
    response = httpx.post(f"{server}/router/batch", json={"inputs": ["미분"] * 5})
    assert response.status_code == 422 and "max_batch_size 4" in response.json()["detail"]


def test_metrics_move(server):
    before = httpx.get(f"{server}/metrics").text
    RemoteRunnable(f"{server}/router").invoke("미분")
    RemoteRunnable(f"{server}/router").invoke(f"미분 {FAIL_MARKER}")
    httpx.post(f"{server}/router/invoke", content=b"x" * 60_000)
    after = httpx.get(f"{server}/metrics").text

    def moved(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    routed = {"domain": "Math", "expert": "math", "reason": "confident"}
    assert moved("domain_router_routes_total", **routed) == 1
    assert moved("domain_router_fallbacks_total", reason="expert_error") == 1
    assert moved("domain_router_http_requests_total", endpoint="/router/invoke", status="200") == 2
    assert moved("domain_router_rejected_requests_total", reason="body_too_large") == 1
    assert moved("domain_router_estimated_cost_usd_total", expert="math") > 0
    assert moved("domain_router_expert_latency_seconds_count", expert="general") == 1
    assert API_KEY not in after


def test_audit_lines_are_written_without_prompts_or_keys(server, audit_path):
    request_id = "req-audit-check-1"
    remote = RemoteRunnable(f"{server}/router", headers={"X-Request-ID": request_id})
    answer = remote.invoke(PRIVATE)
    text = audit_path.read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines()]
    mine = [r for r in records if r["request_id"] == routing_of(answer)["request_id"]]
    assert len(mine) == 1
    record = mine[0]
    assert record["http_request_id"] == request_id
    assert (record["domain"], record["expert"], record["reason"]) == ("Math", "math", "confident")
    assert record["scores"]["Math"] > 0.9 and record["estimated_cost_usd"] > 0
    assert {"timestamp", "classifier_latency_ms", "expert_latency_ms"} <= record.keys()
    assert "question" not in record
    assert PRIVATE not in text and API_KEY not in text
    assert any(r["reason"] == "expert_error" for r in records)


def test_the_server_log_has_one_access_line_per_request_and_no_logging_error(
    config: RouterConfig, tmp_path: Path
):
    path = write_config(tmp_path / "router.yaml", config.model_dump(mode="json"))
    port = free_port()
    command = [*serve_command(path, port), "--log-level", "info"]
    process = ServerProcess(command, port=port, log_path=tmp_path / "server.log")
    url = process.wait_ready().url
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            for n in range(20):  # a key in the query string must not reach the log
                if n % 2:
                    response = client.get(f"/healthz?n={n}&api_key={API_KEY}")
                else:
                    response = client.post(f"/router/invoke?n={n}", json={"input": QUESTION})
                assert response.status_code == 200, response.text
    finally:
        process.stop()
    log = (tmp_path / "server.log").read_text(errors="replace")
    access = re.findall(r'"(?:GET|POST) /\S+\?n=\d+\S* HTTP/1\.1" 200', log)
    assert len(access) == 20, log[-3000:]
    assert "Logging error" not in log and "Traceback" not in log, log[-3000:]
    assert API_KEY not in log and "api_key=[redacted]" in log

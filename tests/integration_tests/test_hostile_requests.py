"""Hostile requests against a real server process: never a 500, never a cut connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from langserve import RemoteRunnable

from tests.fake_openai import HANG_MARKER, FakeOpenAIServer
from tests.hostile_inputs import GOOD_QUESTION, Prober, bodies, good_request
from tests.integration_tests._servers import (
    ServerProcess,
    free_port,
    router_config,
    serve_command,
    write_config,
)

JSON = {"content-type": "application/json"}
IMAGE_ONLY = [{"type": "human", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]


def start_server(directory: Path, model: Path, base_url: str, *options: str) -> ServerProcess:
    directory.mkdir(parents=True, exist_ok=True)
    path = write_config(directory / "router.yaml", router_config(model, base_url))
    port = free_port()
    command = serve_command(path, port, *options)
    return ServerProcess(command, port=port, log_path=directory / "server.log").wait_ready()


@pytest.fixture(scope="module")
def audit_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-audit") / "audit.jsonl"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    math_checkpoint: Path,
    fake_openai: FakeOpenAIServer,
    audit_path: Path,
) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("hostile")
    options = ("--audit-log", str(audit_path), "--max-input-chars", "2000")
    process = start_server(directory, math_checkpoint, fake_openai.base_url, *options)
    yield process.url
    process.stop()


def post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url, content=body, headers=JSON, timeout=60)


def assert_refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert all(word in detail for word in words), detail


@pytest.mark.parametrize("endpoint", ["/router/invoke", "/router/stream", "/classify/invoke"])
def test_a_list_of_strings_is_422_naming_the_item(server, endpoint):
    response = post(f"{server}{endpoint}", json.dumps({"input": ["미분", "적분"]}).encode())
    assert_refused(response, 422, "input[0]", "chat message")


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        ([{"type": "human", "content": 5}], ["input[0].content", "string or a list"]),
        ([{"type": "human", "content": [{"type": "text", "text": 5}]}], ["input[0].content[0]"]),
        (IMAGE_ONLY, ["input", "empty"]),
        ([{"type": "tool", "content": "x"}], ["input[0]", "tool"]),
        ([{"type": "ai", "content": "x", "tool_calls": [{"x": 1}]}], ["input[0]", "'ai'"]),
    ],
    ids=["content-number", "text-block-number", "image-only", "tool-no-id", "bad-tool-call"],
)
def test_messages_without_usable_text_are_422_naming_the_field(server, messages, words):
    response = post(f"{server}/router/invoke", json.dumps({"input": messages}).encode())
    assert_refused(response, 422, *words)


def test_a_conversation_not_ending_in_a_human_turn_is_422_for_the_router_only(server):
    # Found by the fuzz run: it passed the checks, then failed inside the graph (500).
    conversation = [{"type": "human", "content": "미분"}, {"type": "ai", "content": "답"}]
    body = json.dumps({"input": conversation}).encode()
    for endpoint in ("/router/invoke", "/router/stream"):
        assert_refused(post(f"{server}{endpoint}", body), 422, "input", "human turn")
    batch = json.dumps({"inputs": ["적분", conversation]}).encode()
    response = post(f"{server}/router/batch", batch)
    assert response.status_code == 207, response.text
    assert "inputs[1]" in response.json()["output"][1]["error"]["message"]
    assert post(f"{server}/classify/invoke", body).json()["output"]["label"] == "Math"


@pytest.mark.parametrize("endpoint", ["/router/invoke", "/router/stream", "/classify/invoke"])
def test_invalid_utf8_is_400(server, endpoint):
    response = post(f"{server}{endpoint}", b'{"input": "\xff\xfe \xed\xa0\x80"}')
    assert_refused(response, 400, "not valid UTF-8", "0xff")


@pytest.mark.parametrize("endpoint", ["/router/invoke", "/router/stream", "/classify/invoke"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"input": "\\ud800 \xeb\xaf\xb8\xeb\xb6\x84"}', "input holds"),
        (
            b'{"input": {"question": "q", "messages": [{"type": "human", "content": "\\udfff"}]}}',
            "input.messages[0].content",
        ),
        (b'{"input": [{"type": "human", "content": "x\\ud83d"}]}', "input[0].content"),
    ],
    ids=["question", "messages", "message-list"],
)
def test_a_lone_surrogate_is_422_naming_the_field(server, endpoint, body, field):
    response = post(f"{server}{endpoint}", body)
    assert_refused(response, 422, field, "unpaired surrogate")


def test_a_paired_surrogate_escape_is_an_emoji_and_is_answered(server):
    response = post(
        f"{server}/router/invoke", b'{"input": "\\ud83d\\ude00 \xeb\xaf\xb8\xeb\xb6\x84"}'
    )
    assert response.status_code == 200 and "😀" in response.json()["output"]["content"]


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_422(server, depth):
    body = b'{"input": ' + b"[" * depth + b"]" * depth + b"}"
    assert_refused(post(f"{server}/router/invoke", body), 422, "levels deep", "limit is 32")


def test_a_bad_item_gets_its_own_error_entry_in_a_batch(server, audit_path):
    body = {"inputs": ["미분", ["a"], "  ", "적분"]}
    response = post(f"{server}/router/batch", json.dumps(body).encode())
    assert response.status_code == 207
    output = response.json()["output"]
    assert output[0]["content"].endswith("미분") and output[3]["content"].endswith("적분")
    assert (
        output[1]["error"]["status_code"] == 422 and "inputs[1][0]" in output[1]["error"]["message"]
    )
    assert "inputs[2]" in output[2]["error"]["message"] and "empty" in output[2]["error"]["message"]
    run_ids = response.json()["metadata"]["run_ids"]
    assert run_ids[0] and run_ids[3] and run_ids[1] is None and run_ids[2] is None
    logged = {json.loads(line)["request_id"] for line in audit_path.read_text().splitlines()}
    assert {
        o["response_metadata"]["routing"]["request_id"] for o in (output[0], output[3])
    } <= logged


def test_a_lone_ai_message_in_a_classify_batch_is_classified(server):
    # Found by the fuzz run: one non-human message passed the check (it is the question,
    # for the classifier) and then failed in the batch path (500).
    lone = [{"type": "AIMessageChunk", "content": "미분"}]
    body = json.dumps({"inputs": ["적분", lone]}).encode()
    response = post(f"{server}/classify/batch", body)
    assert response.status_code == 200, response.text
    assert [p["label"] for p in response.json()["output"]] == ["Math", "Math"]


def test_a_batch_of_only_bad_items_is_422_and_a_good_one_200(server):
    bad = post(f"{server}/classify/batch", json.dumps({"inputs": [5, ""]}).encode())
    assert bad.status_code == 422 and [o["error"]["status_code"] for o in bad.json()["output"]] == [
        422,
        422,
    ]
    good = RemoteRunnable(f"{server}/classify").batch(["미분", "적분"])
    assert [p["label"] for p in good] == ["Math", "Math"]


def test_a_remote_batch_with_a_bad_item_returns_the_good_answers(server):
    answers = RemoteRunnable(f"{server}/router").batch(["미분", "   "])
    assert answers[0].content.endswith("미분")
    assert answers[1]["error"]["status_code"] == 422


@pytest.mark.parametrize(
    "config",
    [
        "x",
        [],
        {"configurable": "x"},
        {"configurable": {"thread_id": {"a": 1}}},
        {"recursion_limit": -1, "max_concurrency": "x", "tags": "x", "metadata": 5},
    ],
    ids=["string", "list", "configurable-string", "thread-id-object", "bad-fields"],
)
def test_a_config_the_graph_cannot_honour_is_never_a_500(server, config):
    body = json.dumps({"input": "미분", "config": config}).encode()
    response = post(f"{server}/router/invoke", body)
    # LangServe passes on only the declared configurable keys, so most are dropped (200)
    assert response.status_code in {200, 422}, response.text
    assert (
        post(
            f"{server}/router/batch", json.dumps({"inputs": ["미분"], "config": [{}, {}]}).encode()
        ).status_code
        == 422
    )


def test_the_server_answers_after_hostile_requests(server):
    for body in (b"\xff", b"[" * 50_000, b'{"input": "\\ud800"}', b'{"input": [1]}'):
        assert post(f"{server}/router/invoke", body).status_code in {400, 422}
    good_request(server, httpx.Client(timeout=60))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff\xfe", ["not valid UTF-8"]),
        (b"[" * 50_000, ["levels deep"]),
        (b"not json", ["not valid JSON"]),
        (b"[]", ["body"]),
        (b'{"model": 5, "messages": []}', ["model"]),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "\\ud800"}]}',
            ["messages[0].content", "unpaired surrogate"],
        ),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": '
            b'[{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}',
            ["messages", "empty"],
        ),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": '
            b'[{"type": "image_url", "image_url": "x"}]}]}',
            ["messages.0.content"],
        ),
        (b'{"model": "auto", "messages": [{"role": "tool", "content": "x"}]}', ["messages"]),
    ],
    ids=[
        "utf8",
        "deep",
        "not-json",
        "array",
        "model-number",
        "surrogate",
        "image-only",
        "image-string",
        "tool-alone",
    ],
)
def test_hostile_chat_completions_are_400_in_the_openai_shape(server, body, words):
    response = post(f"{server}/v1/chat/completions", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert all(word in error["message"] for word in words), error["message"]
    good_request(server, httpx.Client(timeout=60))


@pytest.fixture(scope="module")
def impatient_server(
    tmp_path_factory: pytest.TempPathFactory, math_checkpoint: Path, fake_openai: FakeOpenAIServer
) -> Iterator[str]:
    """A server whose requests time out (1 s) before the hanging expert's 2 s."""
    directory = tmp_path_factory.mktemp("impatient")
    options = ("--request-timeout-s", "1")
    process = start_server(directory, math_checkpoint, fake_openai.base_url, *options)
    yield process.url
    process.stop()


def test_a_stream_that_fails_after_the_first_byte_ends_with_an_error_event(impatient_server):
    body = json.dumps({"input": f"극한 {HANG_MARKER}"}).encode()
    with httpx.stream("POST", f"{impatient_server}/router/stream", content=body, headers=JSON) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()  # a cut connection would raise RemoteProtocolError here
    assert text.rstrip().splitlines()[-2:] == [
        "event: error",
        'data: {"status_code": 504, "message": "request took longer than 1s"}',
    ]
    with pytest.raises(httpx.HTTPStatusError, match="longer than 1s"):
        list(RemoteRunnable(f"{impatient_server}/router").stream(f"극한 {HANG_MARKER}"))
    assert RemoteRunnable(f"{impatient_server}/classify").invoke(GOOD_QUESTION)["label"] == "Math"


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=bodies())
def test_fuzzed_requests_get_a_4xx_or_an_answer_never_a_500(server, request):
    prober = _probers.setdefault(server, Prober(server, httpx.Client(timeout=60)))
    prober.send(*request)
    good_request(server, prober.client)


_probers: dict[str, Prober] = {}


def test_every_fuzzed_answer_has_its_audit_line(server, audit_path):
    prober = _probers.get(server)
    if prober is None:
        pytest.skip("the fuzz test did not run")
    assert prober.sent >= 100 and prober.request_ids
    assert prober.missing_audit_lines(audit_path) == []

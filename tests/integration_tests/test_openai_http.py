"""The OpenAI Chat Completions surface of a real server process, driven by OpenAI clients.

The experts call the fake OpenAI server over HTTP, so the proxying is real: the official
``openai`` SDK (sync, async, streaming) and LangChain's ``ChatOpenAI`` talk to the router
as they would to OpenAI.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

from tests.fake_openai import CUT_ONCE_MARKER, FAIL_MARKER, HANG_MARKER, FakeOpenAIServer
from tests.integration_tests._servers import free_port, router_config, start_server, write_config
from tests.integration_tests.test_server_http import metric

QUESTION = "미분계수의 정의를 설명해 주세요"
SERVER_KEY = "drk-test-Zu8pWq3e"  # the router's own bearer key
OTHER_KEY = "drk-test-wrong-key"
USER = [{"role": "user", "content": QUESTION}]


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("openai")


@pytest.fixture(scope="module")
def server(server_dir: Path, math_checkpoint: Path, fake_openai: FakeOpenAIServer) -> Iterator[str]:
    """A server with bearer keys, an audit log, and an offline ``history`` expert."""
    config = router_config(math_checkpoint, fake_openai.base_url)
    config["experts"].append({"name": "history", "domains": ["Korean-History"]})
    # Token usage in a stream: ChatOpenAI asks for it only from api.openai.com by default.
    math = config["experts"][0]
    math["model_kwargs"] = {**math["model_kwargs"], "stream_usage": True}
    # Live tokens with reset chunks for /router/stream; /v1 must hold each attempt anyway.
    config["streaming"] = {"buffer": "off"}
    keys = server_dir / "keys.txt"
    keys.write_text(f"# the router's keys\n{OTHER_KEY}x\n{SERVER_KEY}\n", encoding="utf-8")
    options = ("--api-keys", str(keys), "--audit-log", str(server_dir / "audit.jsonl"))
    process = start_server(server_dir, config, *options, "--max-input-chars", "2000")
    yield process.url
    process.stop()


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=SERVER_KEY, max_retries=0)


@pytest.fixture(scope="module")
def strict(
    tmp_path_factory: pytest.TempPathFactory, math_checkpoint: Path, fake_openai: FakeOpenAIServer
) -> Iterator[str]:
    """No keys; one request at a time; a fallback that fails and hangs like the expert."""
    directory = tmp_path_factory.mktemp("openai-strict")
    config = router_config(math_checkpoint, fake_openai.base_url, timeout_s=1.0, max_retries=0)
    config["fallback"].update(model="openai:fake-scripted", timeout_s=1.0, max_retries=0)
    options = ("--max-concurrency", "1", "--queue-timeout-s", "0.5", "--max-body-bytes", "3000")
    process = start_server(directory, config, *options)
    yield process.url
    process.stop()


def strict_client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def test_a_routed_answer_with_its_routing_headers_and_body_field(client):
    raw = client.chat.completions.with_raw_response.create(model="domain-router", messages=USER)
    completion = raw.parse()
    assert completion.choices[0].message.content == f"[fake-scripted] 답변: {QUESTION}"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "openai:fake-scripted"
    routing = completion.model_extra["routing"]
    assert (routing["expert"], routing["domain"], routing["reason"]) == (
        "math",
        "Math",
        "confident",
    )
    assert completion.usage.prompt_tokens == routing["input_tokens"] > 0
    assert completion.usage.total_tokens == routing["input_tokens"] + routing["output_tokens"]
    assert raw.headers["x-domain-router-expert"] == "math"
    assert raw.headers["x-domain-router-domain"] == "Math"
    assert raw.headers["x-domain-router-reason"] == "confident"
    assert raw.headers["x-domain-router-request-id"] == routing["request_id"]
    assert completion.id == f"chatcmpl-{routing['request_id']}"


def test_auto_is_the_routed_model_too(client):
    completion = client.chat.completions.create(model="auto", messages=USER)
    assert completion.model_extra["routing"]["expert"] == "math"


def test_a_pinned_expert_answers_unclassified_and_is_audited(client, server, server_dir):
    completion = client.chat.completions.create(model="general", messages=USER)
    routing = completion.model_extra["routing"]
    assert completion.choices[0].message.content == f"[fake-answer] 답변: {QUESTION}"
    assert (routing["expert"], routing["reason"], routing["top_k"]) == ("general", "pinned", [])
    audit = [json.loads(line) for line in (server_dir / "audit.jsonl").read_text().splitlines()]
    line = next(a for a in audit if a["request_id"] == routing["request_id"])
    assert (line["reason"], line["expert"]) == ("pinned", "general")
    text = httpx.get(f"{server}/metrics").text
    assert metric(text, "domain_router_routes_total", domain="", expert="general", reason="pinned")
    labels = {"endpoint": "/v1/chat/completions", "status": "200"}
    assert metric(text, "domain_router_http_requests_total", **labels) >= 1


def test_parameters_pass_through_to_the_expert(client, fake_openai):
    client.chat.completions.create(
        model="math",
        messages=[{"role": "system", "content": "짧게"}, *USER],
        temperature=0.2,
        top_p=0.5,
        max_tokens=64,
        stop="끝",
        seed=7,
        user="user-1",
        response_format={"type": "json_object"},
    )
    last = httpx.get(fake_openai.base_url.removesuffix("/v1") + "/last").json()
    sent = last["request"]
    assert sent["response_format"] == {"type": "json_object"}
    assert (sent["temperature"], sent["top_p"], sent["max_completion_tokens"]) == (0.2, 0.5, 64)
    assert (sent["stop"], sent["seed"], sent["user"]) == (["끝"], 7, "user-1")
    assert last["messages"][0] == {"role": "system", "content": "짧게"}


def test_tools_pass_through_to_an_expert_that_takes_them(client):
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    completion = client.chat.completions.create(model="math", messages=USER, tools=[tool])
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "lookup",
        {"question": QUESTION},
    )
    # ``history`` answers offline and cannot call tools, so a routed request may not send them.
    with pytest.raises(openai.BadRequestError, match=r"'tools'.*\['history'\]"):
        client.chat.completions.create(model="domain-router", messages=USER, tools=[tool])
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.chat.completions.create(
            model="history", messages=USER, response_format={"type": "json_object"}
        )


def test_a_stream_joins_to_the_non_streamed_answer(client):
    whole = client.chat.completions.create(model="domain-router", messages=USER)
    stream = client.chat.completions.create(
        model="domain-router",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(deltas) == whole.choices[0].message.content
    assert len([d for d in deltas if d]) > 1  # the expert's tokens, not one block
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish[-1].choices[0].finish_reason == "stop"
    assert finish[-1].model_extra["routing"]["expert"] == "math"
    assert chunks[-1].usage.completion_tokens > 0 and not chunks[-1].choices


@pytest.mark.parametrize("model", ["domain-router", "math"])
def test_a_stream_cut_half_way_never_mixes_into_the_answer(client, model):
    question = f"극한의 정의 {CUT_ONCE_MARKER} {model}"
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"[fake-scripted] 답변: {question}"  # the retry's text, once
    routing = next(c.model_extra["routing"] for c in chunks if c.model_extra.get("routing"))
    assert routing["expert"] == "math"


def test_the_stream_ends_with_done(server):
    headers = {"authorization": f"Bearer {SERVER_KEY}"}
    body = {"model": "math", "messages": USER, "stream": True}
    response = httpx.post(f"{server}/v1/chat/completions", json=body, headers=headers)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-domain-router-reason"] == "pinned"
    events = [line for line in response.text.splitlines() if line]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0].removeprefix("data: "))["object"] == "chat.completion.chunk"


async def test_the_async_client_routes_and_streams(server):
    client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key=SERVER_KEY, max_retries=0)
    completion = await client.chat.completions.create(model="domain-router", messages=USER)
    assert completion.model_extra["routing"]["expert"] == "math"
    stream = await client.chat.completions.create(model="math", messages=USER, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == completion.choices[0].message.content
    await client.close()


def test_chat_openai_in_an_lcel_chain(server):
    model = ChatOpenAI(
        base_url=f"{server}/v1", model="domain-router", api_key=SERVER_KEY, max_retries=0
    )
    prompt = ChatPromptTemplate.from_messages([("system", "한국어로"), ("human", "{question}")])
    chain = prompt | model | StrOutputParser()
    assert chain.invoke({"question": QUESTION}) == f"[fake-scripted] 답변: {QUESTION}"
    assert "".join(chain.stream({"question": QUESTION})) == f"[fake-scripted] 답변: {QUESTION}"
    message = model.invoke(QUESTION)
    assert message.response_metadata["model_name"] == "openai:fake-scripted"


def test_the_models_list_names_the_router_and_every_expert(client):
    assert [m.id for m in client.models.list()] == ["domain-router", "math", "history", "general"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"messages": [{"role": "robot", "content": "x"}]}, ["messages.0.role"]),
        ({"messages": [{"role": "user", "content": 5}]}, ["messages.0.content"]),
        ({"messages": []}, ["messages"]),
        ({"messages": USER, "temperature": 5}, ["temperature", "less than or equal to 2"]),
        ({"messages": USER, "n": 2}, ["n"]),
        ({"messages": USER, "logit_bias": {"1": 2}}, ["logit_bias", "Extra inputs"]),
        ({"messages": USER, "stream": "yes"}, ["stream"]),
        (
            {"messages": [*USER, {"role": "assistant", "content": "답"}]},
            ["messages[1]", "must end in a user turn"],
        ),
        ({"messages": [{"role": "user", "content": "   "}]}, ["messages"]),
        ({"messages": USER, "tool_choice": "auto"}, ["'tool_choice' needs 'tools'"]),
    ],
    ids=[
        "role",
        "content",
        "empty",
        "temperature",
        "n",
        "unknown-field",
        "stream-string",
        "ends-with-assistant",
        "blank",
        "tool-choice-alone",
    ],
)
def test_a_malformed_request_is_400_in_the_openai_shape(client, body, words):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**{"model": "domain-router", **body})
    error = caught.value.body
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["type"] == "invalid_request_error"
    assert all(word in error["message"] for word in words), error["message"]


def test_an_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError, match="does not exist") as caught:
        client.chat.completions.create(model="gpt-4o", messages=USER)
    assert (caught.value.body["param"], caught.value.code) == ("model", "model_not_found")


def test_too_long_an_input_is_400(client):
    long = [{"role": "user", "content": "미분 " * 1500}]
    with pytest.raises(openai.BadRequestError, match="the limit is 2000"):
        client.chat.completions.create(model="domain-router", messages=long)


@pytest.mark.parametrize("key", [None, OTHER_KEY, f"{SERVER_KEY}x", SERVER_KEY[:-1]])
def test_a_missing_or_wrong_key_is_401_everywhere_but_healthz(server, key):
    headers = {} if key is None else {"authorization": f"Bearer {key}"}
    for method, path in [
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("POST", "/router/invoke"),
        ("POST", "/router/stream"),
        ("POST", "/classify/invoke"),
    ]:
        response = httpx.request(method, server + path, json={"input": QUESTION}, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server}/healthz").status_code == 200
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key=key or "x", max_retries=0).models.list()


def test_the_router_route_answers_with_the_key(server):
    headers = {"authorization": f"Bearer {SERVER_KEY}"}
    response = httpx.post(f"{server}/router/invoke", json={"input": QUESTION}, headers=headers)
    assert response.status_code == 200 and response.json()["output"]["content"]


def test_the_servers_keys_reach_no_output_channel(client, server, server_dir):
    client.chat.completions.create(model="domain-router", messages=USER)
    with httpx.Client(base_url=server, headers={"authorization": f"Bearer {SERVER_KEY}"}) as http:
        outputs = [http.get("/metrics").text, http.get("/v1/models").text]
    outputs += [(server_dir / name).read_text() for name in ("audit.jsonl", "server.log")]
    for key in (SERVER_KEY, OTHER_KEY):
        assert not [text for text in outputs if key in text]


def test_an_oversized_body_is_413(strict):
    messages = [{"role": "user", "content": "가" * 3000}]
    with pytest.raises(openai.APIStatusError, match="3000-byte limit") as caught:
        strict_client(strict).chat.completions.create(model="domain-router", messages=messages)
    assert caught.value.status_code == 413
    assert caught.value.body["type"] == "invalid_request_error"


@pytest.mark.parametrize(("marker", "status"), [(FAIL_MARKER, 502), (HANG_MARKER, 504)])
@pytest.mark.parametrize("stream", [False, True])
def test_when_every_expert_fails_upstream_it_is_502_or_504(strict, marker, status, stream):
    messages = [{"role": "user", "content": f"미분 {marker}"}]
    with pytest.raises(openai.APIStatusError, match="failed upstream") as caught:
        strict_client(strict).chat.completions.create(
            model="domain-router", messages=messages, stream=stream
        )
    assert caught.value.status_code == status
    assert caught.value.response.headers["x-domain-router-reason"] == "expert_error"


def test_the_concurrency_limit_is_429(strict):
    busy = threading.Thread(
        target=lambda: httpx.post(
            f"{strict}/v1/chat/completions",
            json={
                "model": "math",
                "messages": [{"role": "user", "content": f"미분 {HANG_MARKER}"}],
            },
            timeout=30,
        )
    )
    busy.start()
    time.sleep(0.3)  # the hanging request holds the only slot for ~2 s
    try:
        with pytest.raises(openai.RateLimitError, match="server busy"):
            strict_client(strict).chat.completions.create(model="domain-router", messages=USER)
    finally:
        busy.join()
    completion = strict_client(strict).chat.completions.create(model="math", messages=USER)
    assert completion.choices[0].message.content.endswith(QUESTION)


def test_a_non_loopback_host_without_keys_is_refused_in_one_line(math_checkpoint, tmp_path):
    import subprocess
    import sys

    config = write_config(tmp_path / "router.yaml", router_config(math_checkpoint, "http://x/v1"))
    command = [sys.executable, "-m", "langchain_domain_router", "serve", "--config", str(config)]
    result = subprocess.run(  # noqa: S603 - a fixed command line
        [*command, "--host", "0.0.0.0", "--port", str(free_port())],  # noqa: S104 - refused
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "--api-keys FILE" in lines[0] and "--allow-unauthenticated" in lines[0]
    )

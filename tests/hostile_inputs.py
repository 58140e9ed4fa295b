"""Hostile inputs for the router: hypothesis strategies and an HTTP prober.

Shared by the property-based tests (a bounded slice in CI) and
``benchmarks/fuzz_server.py`` (the long run behind ``make fuzz``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from hypothesis import strategies as st

GOOD_QUESTION = "미분계수의 정의를 설명해 주세요"
ENDPOINTS = (
    "/router/invoke",
    "/router/batch",
    "/router/stream",
    "/router/stream_events",
    "/classify/invoke",
    "/classify/batch",
    "/v1/chat/completions",
)
OPENAI_ENDPOINT = "/v1/chat/completions"
ALLOWED = {200, 400, 413, 422}
"""Statuses a hostile request may get; a batch may also get 207 (some items answered)."""
OPENAI_ALLOWED = {200, 400, 404, 413}
"""Statuses a hostile chat-completions request may get (OpenAI has no 422)."""
ROLES = ["system", "developer", "user", "assistant", "tool", "function", "x"]
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
MESSAGE_TYPES = ["human", "ai", "system", "tool", "function", "chat", "AIMessageChunk", "x"]
ODD_CHARACTERS = ["\x00", "\u200b", "\ufeff", "\u202e", "\n", "\t", "\x1b", "\ud800", "\udfff"]

characters = st.one_of(
    st.characters(),
    st.characters(codec=None, categories=["Cs"]),  # unpaired surrogates
    st.sampled_from(ODD_CHARACTERS),
)
texts = st.one_of(
    st.text(characters, max_size=40),
    st.sampled_from(["미분", "  ", "", GOOD_QUESTION, "Fourier transform?"]),
    st.builds(lambda n, c: c * n, st.integers(1, 3000), st.sampled_from(["가", "a", " "])),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), texts
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)
    ),
    max_leaves=12,
)


def nested(depth: int, leaf: Any = GOOD_QUESTION) -> Any:
    """``leaf`` inside ``depth`` alternating lists and objects."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"messages": value}
    return value


content_blocks = st.one_of(
    texts,
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(texts, json_values)}),
    st.fixed_dictionaries({"type": st.sampled_from(["image_url", "weird"]), "image_url": texts}),
    json_values,
)
messages = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(MESSAGE_TYPES),
            "content": st.one_of(texts, st.lists(content_blocks, max_size=3), json_values),
        },
        optional={
            "tool_call_id": json_values,
            "tool_calls": json_values,
            "name": json_values,
            "role": json_values,
            "additional_kwargs": json_values,
            "id": json_values,
        },
    ),
    json_values,
)
inputs = st.one_of(
    texts,
    st.lists(messages, max_size=4),
    st.fixed_dictionaries(
        {}, optional={"question": st.one_of(texts, json_values), "messages": st.lists(messages)}
    ),
    json_values,
    st.builds(nested, st.integers(1, 200)),
)
openai_parts = st.one_of(
    texts,
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(texts, json_values)}),
    st.fixed_dictionaries(
        {"type": st.just("image_url"), "image_url": st.one_of(texts, json_values)}
    ),
    json_values,
)
openai_messages = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(ROLES),
            "content": st.one_of(texts, st.lists(openai_parts, max_size=3), json_values),
        },
        optional={"name": json_values, "tool_calls": json_values, "tool_call_id": json_values},
    ),
    json_values,
)
openai_payloads = st.fixed_dictionaries(
    {
        "model": st.one_of(
            st.sampled_from(["domain-router", "auto", "math", "general", "gpt-4o"]), json_values
        ),
        "messages": st.one_of(st.lists(openai_messages, max_size=4), json_values),
    },
    optional={
        "stream": st.one_of(st.booleans(), json_values),
        "stream_options": json_values,
        "temperature": st.one_of(st.floats(-1, 3), json_values),
        "max_tokens": st.one_of(st.integers(-5, 10**6), json_values),
        "stop": st.one_of(texts, st.lists(texts, max_size=6), json_values),
        "n": json_values,
        "seed": json_values,
        "user": json_values,
        "tools": st.one_of(st.just([TOOL]), json_values),
        "tool_choice": json_values,
        "response_format": json_values,
        "logprobs": json_values,
    },
)
configs = st.one_of(
    st.none(),
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "configurable": json_values,
            "tags": json_values,
            "metadata": json_values,
            "recursion_limit": json_values,
            "max_concurrency": json_values,
            "run_name": json_values,
        },
    ),
)


@st.composite
def runnable_payloads(draw: st.DrawFn, endpoint: str) -> dict[str, Any]:
    """A LangServe request: ``input`` (``inputs`` for a batch), ``config``, ``kwargs``."""
    key = "inputs" if endpoint.endswith("batch") else "input"
    value = draw(st.lists(inputs, max_size=5)) if key == "inputs" else draw(inputs)
    payload: dict[str, Any] = {key: value}
    config = draw(configs)
    if config is not None:
        payload["config"] = config
    if draw(st.booleans()):
        payload["kwargs"] = draw(json_values)
    return payload


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """An endpoint and a request body: JSON, almost-JSON or bytes."""
    endpoint = draw(st.sampled_from(ENDPOINTS))
    payload = draw(openai_payloads if endpoint == OPENAI_ENDPOINT else runnable_payloads(endpoint))
    body = json.dumps(payload).encode()  # ASCII: surrogates travel as \\ud800 escapes
    mangle = draw(st.sampled_from(["none"] * 6 + ["bytes", "truncate", "raw", "deep", "utf8"]))
    if mangle == "bytes":
        body = draw(st.binary(max_size=200))
    elif mangle == "truncate":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    elif mangle == "raw":
        body = json.dumps(draw(json_values)).encode()
    elif mangle == "deep":
        depth = draw(st.integers(20, 20_000))
        body = b'{"input": ' + b"[" * depth + b"]" * depth + b"}"
    elif mangle == "utf8":
        raw = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
        cut = draw(st.integers(0, len(raw)))
        body = raw[:cut] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + raw[cut:]
    return endpoint, body


def good_request(url: str, client: httpx.Client) -> None:
    """A good question, answered: the server survived whatever came before."""
    response = client.post(f"{url}/router/invoke", json={"input": GOOD_QUESTION})
    assert response.status_code == 200, response.text
    assert response.json()["output"]["content"]


def _sse_events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if "event" in lines:
            events.append((lines["event"], lines.get("data", "")))
    return events


@dataclass
class Prober:
    """Sends hostile requests and checks every answer; counts what it saw."""

    url: str
    client: httpx.Client
    statuses: Counter[int] = field(default_factory=Counter)
    request_ids: list[str] = field(default_factory=list)
    sent: int = 0

    def send(self, endpoint: str, body: bytes) -> int:
        """Send one request; fail on a 5xx, a reset connection or a malformed answer."""
        headers = {"content-type": "application/json"}
        response = self.client.post(f"{self.url}{endpoint}", content=body, headers=headers)
        self.sent += 1
        status = response.status_code
        self.statuses[status] += 1
        if endpoint == OPENAI_ENDPOINT:
            self._check_openai(response)
            return status
        allowed = ALLOWED | ({207} if endpoint.endswith("batch") else set())
        assert status in allowed, f"{endpoint} -> {status}: {response.text[:500]!r}"
        if status == 200 and endpoint.endswith(("/stream", "/stream_events")):
            events = _sse_events(response.text)
            assert events and events[-1][0] in {"end", "error"}, response.text[-500:]
            for name, data in events:
                assert name != "error" or json.loads(data)["status_code"] < 500, data
            return status
        content = response.json()
        if "output" in content:  # an answer, or a batch's per-item answers
            self._collect(endpoint, content)
        else:
            assert status != 200 and content["detail"], response.text
        return status

    def _check_openai(self, response: httpx.Response) -> None:
        """A chat completion, a stream ending in ``[DONE]``, or an OpenAI-shaped error."""
        status = response.status_code
        assert status in OPENAI_ALLOWED, f"{OPENAI_ENDPOINT} -> {status}: {response.text[:500]!r}"
        if status != 200:
            error = response.json()["error"]
            assert error["message"] and set(error) == {"message", "type", "param", "code"}, error
            return
        if response.headers["content-type"].startswith("text/event-stream"):
            events = [line for line in response.text.splitlines() if line]
            assert events[-1] == "data: [DONE]", response.text[-500:]
            routing = json.loads(events[-2].removeprefix("data: ")).get("routing")
            if routing is None:  # the last event is the usage chunk
                routing = json.loads(events[-3].removeprefix("data: "))["routing"]
        else:
            routing = response.json()["routing"]
        self.request_ids.append(routing["request_id"])

    def _collect(self, endpoint: str, body: dict[str, Any]) -> None:
        outputs = body["output"] if endpoint.endswith("batch") else [body["output"]]
        for output in outputs:
            if "error" in output and "content" not in output:
                assert output["error"]["status_code"] == 422, output
            elif endpoint.startswith("/router"):
                self.request_ids.append(output["response_metadata"]["routing"]["request_id"])

    def missing_audit_lines(self, audit_path: Path) -> list[str]:
        """The answered requests without an audit line."""
        logged = {
            json.loads(line)["request_id"]
            for line in audit_path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        }
        return [request_id for request_id in self.request_ids if request_id not in logged]

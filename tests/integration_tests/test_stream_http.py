"""Over real HTTP, ``/router/stream`` delivers the text ``/router/invoke`` returns.

Experts are on the fake OpenAI server: a streaming one, one with
``disable_streaming=True``, and each of them retried (the first attempt breaks off
half-way) and failed over to ``general`` (every attempt breaks off).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from langserve import RemoteRunnable

from langchain_domain_router import STREAM_RESET
from tests.conftest import shown_text
from tests.fake_openai import CUT_MARKER, CUT_ONCE_MARKER, FakeOpenAIServer
from tests.integration_tests._servers import (
    ServerProcess,
    free_port,
    router_config,
    serve_command,
    write_config,
)

VARIANTS = {
    "streaming": ({}, "attempt"),
    "streaming-live": ({}, "off"),
    "non-streaming": ({"disable_streaming": True}, "attempt"),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def server(
    request: pytest.FixtureRequest,
    math_checkpoint: Path,
    fake_openai: FakeOpenAIServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    extra_kwargs, buffer = VARIANTS[request.param]
    config: dict[str, Any] = router_config(math_checkpoint, fake_openai.base_url)
    config["experts"][0]["model_kwargs"].update(extra_kwargs)
    config["streaming"] = {"buffer": buffer}
    directory = tmp_path_factory.mktemp(f"stream-{request.param}")
    path = write_config(directory / "router.yaml", config)
    port = free_port()
    process = ServerProcess(serve_command(path, port), port=port, log_path=directory / "log")
    yield process.wait_ready().url, buffer
    process.stop()


@pytest.mark.parametrize(
    ("marker", "answering_model", "expert"),
    [
        ("", "fake-scripted", "math"),
        (CUT_ONCE_MARKER, "fake-scripted", "math"),  # retried
        (CUT_MARKER, "fake-answer", "general"),  # failed over
    ],
    ids=["answers", "retried", "failed-over"],
)
def test_stream_equals_invoke_over_http(server, marker, answering_model, expert):
    url, buffer = server
    remote = RemoteRunnable(f"{url}/router", timeout=60)
    results = []
    for call in ("invoke", "stream"):
        question = f"미분 {marker} {uuid.uuid4().hex[:8]}".replace("  ", " ")
        expected = f"[{answering_model}] 답변: {question}"
        if call == "invoke":
            answer = remote.invoke(question)
            text, routing = answer.content, answer.response_metadata["routing"]
        else:
            chunks = list(remote.stream(question))
            assert all(isinstance(c, AIMessageChunk) for c in chunks)
            text, routing = shown_text(chunks), chunks[-1].response_metadata["routing"]
            resets = sum(bool(c.response_metadata.get(STREAM_RESET)) for c in chunks)
            if buffer == "attempt":  # no partial text ever: plain concatenation is the answer
                assert resets == 0 and "".join(str(c.content) for c in chunks) == expected
            elif marker:  # live tokens of the broken attempt, then a reset chunk
                assert resets >= 1
            else:  # OpenAI's chunk ids change within a call: still one attempt, no reset
                assert resets == 0 and len(chunks) > 3
        assert text == expected, call
        results.append((routing["expert"], routing["reason"]))
    assert results[0] == results[1] and results[0][0] == expert

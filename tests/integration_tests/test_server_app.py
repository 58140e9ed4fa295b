"""``create_app`` in process: threads through a checkpointer, the lifespan hook, input reads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from starlette.requests import Request

from langchain_domain_router import DomainClassifier, _inputs
from langchain_domain_router.server import _limits, create_app
from tests.conftest import fake_expert, make_config


def test_threads_keep_state_and_the_lifespan_hook_runs(math_checkpoint):
    events: list[str] = []

    @asynccontextmanager
    async def pool(app):
        events.append("open")
        yield
        events.append("close")

    app = create_app(
        make_config(math=fake_expert("미분 답변")),
        classifier=DomainClassifier.from_pretrained(math_checkpoint),
        checkpointer=InMemorySaver(),
        lifespan=pool,
    )
    thread = {"configurable": {"thread_id": "t-1"}}
    with TestClient(app) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        for question in ("미분이란?", "그럼 적분은?"):
            response = client.post("/router/invoke", json={"input": question, "config": thread})
            assert response.json()["output"]["content"] == "미분 답변"
    state = app.state.router.graph.get_state(thread)
    assert [m.type for m in state.values["messages"]] == ["human", "ai", "human", "ai"]
    assert events == ["open", "close"]


def test_create_app_loads_the_config_once(math_checkpoint, config_loads):
    config = make_config(math=fake_expert("미분 답변"))
    app = create_app(config, classifier=DomainClassifier.from_pretrained(math_checkpoint))
    assert config_loads == [config]
    assert app.state.router.invoke("미분이란?").content == "미분 답변"


HUMAN_TURN = {"role": "user", "content": "미분이란?"}


def test_a_question_is_read_once_per_http_request_and_per_invoke(
    math_checkpoint, reads, monkeypatch
):
    traced: list[object] = []
    ainvoke = DomainClassifier.ainvoke

    async def counted(self, value, config=None, **kwargs):
        traced.append(value)
        return await ainvoke(self, value, config, **kwargs)

    monkeypatch.setattr(DomainClassifier, "ainvoke", counted)
    decoded: list[bytes] = []  # every JSON body decoded: once per request, by the limits
    decode_json = _limits.decode_json
    monkeypatch.setattr(
        _limits, "decode_json", lambda body, depth: decoded.append(body) or decode_json(body, depth)
    )
    monkeypatch.setattr(Request, "json", lambda self: pytest.fail("a body decoded twice"))
    scanned: list[tuple[str, str]] = []  # each string checked for bad Unicode, and where
    check_text = _inputs.check_text

    def counted_check(text: str, where: str) -> str:
        scanned.append((where, text))
        return check_text(text, where)

    for module in (_inputs, _limits):
        monkeypatch.setattr(module, "check_text", counted_check)
    app = create_app(
        make_config(math=fake_expert("미분 답변")),
        classifier=DomainClassifier.from_pretrained(math_checkpoint),
    )
    conversation = [{"type": "human", "content": "미분"}, {"type": "ai", "content": "답"}]
    with TestClient(app) as client:
        for endpoint, body in [
            ("/router/invoke", {"input": "미분이란?"}),
            ("/router/invoke", {"input": {"question": "적분은?", "messages": conversation}}),
            ("/router/stream", {"input": [{"type": "human", "content": "미분이란?"}]}),
            ("/v1/chat/completions", {"model": "auto", "messages": [HUMAN_TURN]}),
        ]:
            reads.clear()
            decoded.clear()
            traced.clear()
            scanned.clear()
            response = client.post(endpoint, json=body)
            assert response.status_code == 200, response.text
            assert len(reads) == 1 and len(decoded) == 1, endpoint
            assert scanned and len(scanned) == len(set(scanned)), (endpoint, scanned)
            asked = "적분은?" if "question" in str(body) else "미분이란?"
            assert [text for _, text in scanned].count(asked) == 1, (endpoint, scanned)
            if not endpoint.endswith("stream"):  # the metrics need no run of the classifier
                assert traced == [], endpoint
        reads.clear()
        response = client.post("/router/batch", json={"inputs": ["미분", "적분", "미분"]})
        assert [answer["content"] for answer in response.json()["output"]] == ["미분 답변"] * 3
        assert reads == ["미분", "적분", "미분"]
        reads.clear()
        response = client.post("/classify/invoke", json={"input": {"messages": conversation}})
        assert response.json()["output"]["label"] == "Math"
        assert len(reads) == 1
        reads.clear()
        response = client.post("/router/invoke", json={"input": conversation})
        assert response.status_code == 422 and "human turn" in response.text
        assert len(reads) == 1
    reads.clear()
    assert app.state.router.invoke("미분이란?").content == "미분 답변"
    assert reads == ["미분이란?"]
    # A question read under the classifier's looser rule is refused by the router.
    question = _inputs.read_question([HumanMessage("미분"), AIMessage("답")], question_last=False)
    with pytest.raises(ValueError, match="human turn"):
        app.state.router.invoke(question)


@contextmanager
def served_in_this_process(app) -> Iterator[str]:
    """``app`` under uvicorn on 127.0.0.1, in a thread: real HTTP, this process's counters."""
    import threading
    import time

    import uvicorn

    from tests.integration_tests._servers import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(600):  # at most 60 s to load the model and warm up
            if server.started and httpx.get(f"http://127.0.0.1:{port}/readyz").is_success:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the server did not get ready in 60 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_question_over_real_http_is_read_once(math_checkpoint, reads):
    app = create_app(
        make_config(math=fake_expert("미분 답변")),
        classifier=DomainClassifier.from_pretrained(math_checkpoint),
    )
    with served_in_this_process(app) as url:
        reads.clear()  # the start-up's warm-up question
        response = httpx.post(f"{url}/router/invoke", json={"input": {"question": " 미분이란? "}})
        assert response.status_code == 200, response.text
        assert response.json()["output"]["content"] == "미분 답변"
        assert reads == [{"question": " 미분이란? ", "messages": []}]
        reads.clear()
        body = b'{"input": {"question": "\\ud800"}}'  # a JSON escape, as a client sends it
        refused = httpx.post(f"{url}/router/invoke", content=body)
        assert refused.status_code == 422 and "input.question holds" in refused.text
        assert len(reads) == 1

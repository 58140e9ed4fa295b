"""A request sent again with its ``X-Request-ID`` is answered once: stored, or from its thread."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from langchain_domain_router import DomainClassifier
from langchain_domain_router.schema import CLASSIFY_NODE
from langchain_domain_router.server import create_app
from langchain_domain_router.server._idempotency import REPLAYED_HEADER
from tests.conftest import HangingChatModel, PromptRecorder, fake_expert, make_config

POSTGRES_DSN = os.environ.get("DOMAIN_ROUTER_TEST_POSTGRES_DSN")
CHECKPOINTERS = ["memory", "postgres"]


def checkpointer_value(kind: str) -> str:
    if kind == "postgres":
        if not POSTGRES_DSN:
            pytest.skip("set DOMAIN_ROUTER_TEST_POSTGRES_DSN to a PostgreSQL server to run this")
        return f"postgres:{POSTGRES_DSN}"
    return kind


def make_app(math_checkpoint: Path, kind: str) -> tuple[Any, PromptRecorder]:
    calls = PromptRecorder()  # one entry per expert call
    app = create_app(
        make_config(math=fake_expert("미분 답변")),
        classifier=DomainClassifier.from_pretrained(math_checkpoint),
        checkpointer=checkpointer_value(kind),
        callbacks=[calls],
    )
    return app, calls


def ask(client: TestClient, question: str, request_id: str, thread: str | None = None) -> Any:
    body: dict[str, Any] = {"input": question}
    if thread:
        body["config"] = {"configurable": {"thread_id": thread}}
    return client.post("/router/invoke", json=body, headers={"X-Request-ID": request_id})


def history(client: TestClient, app: Any, thread: str) -> list[str]:
    state = client.portal.call(app.state.router.graph.aget_state, thread_config(thread))
    return [f"{message.type}:{message.content}" for message in state.values.get("messages", [])]


def thread_config(thread: str, request_id: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"configurable": {"thread_id": thread}}
    if request_id:
        config["metadata"] = {"http_request_id": request_id}
    return config


@pytest.mark.parametrize("kind", CHECKPOINTERS)
def test_a_request_sent_again_is_answered_from_the_store(math_checkpoint: Path, kind: str):
    app, calls = make_app(math_checkpoint, kind)
    thread, first, one_off = (uuid.uuid4().hex for _ in range(3))
    with TestClient(app) as client:
        answer = ask(client, "미분이란?", first, thread)
        assert answer.status_code == 200, answer.text
        assert REPLAYED_HEADER not in answer.headers
        again = ask(client, "미분이란?", first, thread)
        assert again.status_code == 200
        assert again.headers[REPLAYED_HEADER] == "true"
        assert again.json() == answer.json()
        assert history(client, app, thread) == ["human:미분이란?", "ai:미분 답변"]
        # A request without a thread is stored too; the same id for another question is 409.
        assert ask(client, "극한이란?", one_off).status_code == 200
        assert ask(client, "극한이란?", one_off).headers[REPLAYED_HEADER] == "true"
        conflict = ask(client, "적분이란?", one_off)
        assert conflict.status_code == 409
        assert "already used for a different request" in conflict.json()["detail"]
        # A malformed config is LangServe's 422, as without an id.
        for config in ("oops", {"configurable": []}):
            body = {"input": "미분이란?", "config": config}
            headers = {"X-Request-ID": uuid.uuid4().hex}
            assert client.post("/router/invoke", json=body, headers=headers).status_code == 422
        # Without an id nothing is stored: each request runs.
        for _ in range(2):
            plain = client.post("/router/invoke", json={"input": "극한이란?"})
            assert REPLAYED_HEADER not in plain.headers
    assert len(calls.prompts) == 4  # first, one_off and the two plain requests


@pytest.mark.parametrize("kind", CHECKPOINTERS)
def test_a_turn_that_completed_but_was_not_stored_is_answered_from_its_thread(
    math_checkpoint: Path, kind: str
):
    # As when a replica dies after the thread's last checkpoint, before storing the answer.
    app, calls = make_app(math_checkpoint, kind)
    thread, request_id = uuid.uuid4().hex, uuid.uuid4().hex
    with TestClient(app) as client:
        graph = app.state.router.graph
        done = client.portal.call(
            graph.ainvoke, {"question": "미분이란?"}, thread_config(thread, request_id)
        )
        resent = ask(client, "미분이란?", request_id, thread)
        assert resent.status_code == 200, resent.text
        assert resent.headers[REPLAYED_HEADER] == "true"
        assert resent.json()["output"]["content"] == done["messages"][-1].content == "미분 답변"
        assert history(client, app, thread) == ["human:미분이란?", "ai:미분 답변"]
    assert calls.prompts == []  # the served app's callbacks: the resend called no expert


@pytest.mark.parametrize("kind", CHECKPOINTERS)
@pytest.mark.parametrize("earlier_turns", [0, 1])
def test_a_turn_that_broke_off_is_run_again_from_before_it(
    math_checkpoint: Path, kind: str, earlier_turns: int
):
    # As when a replica dies mid-run: the thread holds the question, not the answer.
    app, _ = make_app(math_checkpoint, kind)
    thread, request_id = uuid.uuid4().hex, uuid.uuid4().hex
    with TestClient(app) as client:
        if earlier_turns:
            assert ask(client, "극한이란?", uuid.uuid4().hex, thread).status_code == 200
        graph = app.state.router.graph
        config = thread_config(thread, request_id)
        client.portal.call(
            lambda: graph.ainvoke(
                {"question": "미분이란?"}, config, interrupt_after=[CLASSIFY_NODE]
            )
        )
        assert history(client, app, thread)[-1] == "human:미분이란?"
        resent = ask(client, "미분이란?", request_id, thread)
        assert resent.status_code == 200, resent.text
        assert REPLAYED_HEADER not in resent.headers
        earlier = ["human:극한이란?", "ai:미분 답변"] * earlier_turns
        assert history(client, app, thread) == [*earlier, "human:미분이란?", "ai:미분 답변"]
        # Once answered, it is stored like any other.
        assert ask(client, "미분이란?", request_id, thread).headers[REPLAYED_HEADER] == "true"
        assert len(history(client, app, thread)) == 2 * earlier_turns + 2


def test_a_resend_racing_its_original_in_one_process_waits_and_gets_its_answer(
    math_checkpoint: Path,
):
    # The math expert hangs past its 0.5 s timeout: each run takes that long at least.
    calls = PromptRecorder()
    app = create_app(
        make_config(math=HangingChatModel(messages=iter([]))),
        classifier=DomainClassifier.from_pretrained(math_checkpoint),
        callbacks=[calls],
    )
    request_id = uuid.uuid4().hex
    with TestClient(app) as client, ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: ask(client, "미분이란?", request_id), range(2)))
    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    assert sorted(answer.headers.get(REPLAYED_HEADER, "") for answer in answers) == ["", "true"]
    assert len(calls.prompts) == 3  # one run: math twice (max_retries=1), then the fallback

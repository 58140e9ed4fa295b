"""Multi-turn threads over HTTP: ``--checkpointer``, and clear answers when there is none."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from langserve import RemoteRunnable

from langchain_domain_router import DomainClassifier
from langchain_domain_router.server import create_app
from langchain_domain_router.server._checkpointer import CheckpointerSpec
from tests.conftest import fake_expert, make_config
from tests.fake_openai import FakeOpenAIServer
from tests.integration_tests._servers import (
    ServerProcess,
    free_port,
    router_config,
    serve_command,
    write_config,
)

POSTGRES_DSN = os.environ.get("DOMAIN_ROUTER_TEST_POSTGRES_DSN")


def app_for(math_checkpoint: Path, checkpointer: Any = None) -> Any:
    return create_app(
        make_config(math=fake_expert("미분 답변")),
        classifier=DomainClassifier.from_pretrained(math_checkpoint),
        checkpointer=checkpointer,
    )


def post(client: TestClient, path: str, **body: Any) -> httpx.Response:
    return client.post(f"/router/{path}", json=body)


def test_a_thread_request_to_a_server_without_checkpointer_is_422(math_checkpoint):
    thread = {"configurable": {"thread_id": "t-1"}}
    with TestClient(app_for(math_checkpoint)) as client:
        for path, body in [
            ("invoke", {"input": "미분이란?", "config": thread}),
            ("stream", {"input": "미분이란?", "config": thread}),
            ("batch", {"inputs": ["미분이란?"], "config": thread}),
        ]:
            response = post(client, path, **body)
            assert response.status_code == 422, path
            assert "--checkpointer" in response.text
        assert post(client, "invoke", input="미분이란?").status_code == 200


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_checkpointer_option_keeps_threads_and_answers_without_one(math_checkpoint, tmp_path, kind):
    if kind == "postgres" and not POSTGRES_DSN:
        pytest.skip("set DOMAIN_ROUTER_TEST_POSTGRES_DSN to a PostgreSQL server to run this")
    target = {"memory": "", "sqlite": f":{tmp_path / 'threads.db'}", "postgres": f":{POSTGRES_DSN}"}
    app = app_for(math_checkpoint, f"{kind}{target[kind]}")
    thread = {"configurable": {"thread_id": f"t-{os.getpid()}-{kind}"}}
    with TestClient(app) as client:
        for question in ("미분이란?", "그럼 적분은?"):
            response = post(client, "invoke", input=question, config=thread)
            assert response.status_code == 200, response.text
        # No thread: a one-off answer, not a 500 and not stored.
        assert post(client, "invoke", input="극한이란?").json()["output"]["content"] == "미분 답변"
        assert post(client, "stream", input="극한이란?").status_code == 200
        state = client.portal.call(app.state.router.graph.aget_state, thread)
    assert [m.type for m in state.values["messages"]] == ["human", "ai", "human", "ai"]


def test_checkpointer_values_are_checked():
    assert CheckpointerSpec.parse("sqlite:a.db") == CheckpointerSpec("sqlite", "a.db")
    for bad in ("sqlite", "sqlite:", "redis:x", "memory:x", "postgres"):
        with pytest.raises(ValueError, match="use 'memory', 'sqlite:PATH' or 'postgres:DSN'"):
            CheckpointerSpec.parse(bad)


def test_two_turns_on_one_thread_against_serve_with_sqlite(
    math_checkpoint: Path, fake_openai: FakeOpenAIServer, tmp_path: Path
):
    config = write_config(
        tmp_path / "router.yaml", router_config(math_checkpoint, fake_openai.base_url)
    )
    database = tmp_path / "threads.db"
    thread = {"configurable": {"thread_id": "user-42"}}
    turns = ["미분이란?", "그럼 적분은?", "극한은?"]

    def serve_and_ask(questions: list[str]) -> list[dict[str, Any]]:
        port = free_port()
        command = serve_command(config, port, "--checkpointer", f"sqlite:{database}")
        process = ServerProcess(command, port=port, log_path=tmp_path / f"log-{port}")
        try:
            remote = RemoteRunnable(f"{process.wait_ready().url}/router", timeout=60)
            seen = []
            for question in questions:
                assert (
                    remote.invoke(question, thread).content == f"[fake-scripted] 답변: {question}"
                )
                seen.append(httpx.get(f"{fake_openai.base_url[:-3]}/last").json()["messages"])
            return seen
        finally:
            process.stop()

    first, second = serve_and_ask(turns[:2])
    assert [m["content"] for m in first] == [turns[0]]
    assert [m["content"] for m in second] == [
        turns[0],
        f"[fake-scripted] 답변: {turns[0]}",
        turns[1],
    ]
    # The thread outlives the process: a restarted server continues it.
    (third,) = serve_and_ask(turns[2:])
    assert [m["content"] for m in third if m["role"] == "user"] == turns

"""``create_app`` in process: multi-turn threads through a checkpointer, the lifespan hook."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi.testclient import TestClient
from langgraph.checkpoint.memory import InMemorySaver

from langchain_domain_router import DomainClassifier
from langchain_domain_router.server import create_app
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

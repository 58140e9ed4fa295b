"""``langgraph dev`` serves the graph named in ``langgraph.json``; a ``langgraph_sdk``
client creates a thread and runs it over 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_openai import FAIL_MARKER, FakeOpenAIServer
from tests.integration_tests._servers import (
    REPO_ROOT,
    ServerProcess,
    child_env,
    free_port,
    router_config,
    write_config,
)

LANGGRAPH = shutil.which("langgraph")
pytestmark = pytest.mark.skipif(
    LANGGRAPH is None or importlib.util.find_spec("langgraph_api") is None,
    reason='needs the LangGraph CLI in-memory server: pip install "langgraph-cli[inmem]"',
)


def test_langgraph_json_names_the_platform_graph():
    spec = json.loads((REPO_ROOT / "langgraph.json").read_text())
    module, _, variable = spec["graphs"]["domain_router"].partition(":")
    assert (module, variable) == ("langchain_domain_router.platform", "graph")


@pytest.fixture(scope="module")
def platform_url(
    tmp_path_factory: pytest.TempPathFactory, math_checkpoint: Path, fake_openai: FakeOpenAIServer
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("langgraph")
    config = write_config(tmp / "router.yaml", router_config(math_checkpoint, fake_openai.base_url))
    port = free_port()
    command = [
        str(LANGGRAPH),
        "dev",
        "--config",
        str(REPO_ROOT / "langgraph.json"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-browser",
        "--no-reload",
    ]
    # cwd=tmp: the dev server keeps its state in ./.langgraph_api
    process = ServerProcess(
        command,
        port=port,
        log_path=tmp / "langgraph.log",
        ready_path="/ok",
        env=child_env(DOMAIN_ROUTER_CONFIG=str(config)),
        cwd=tmp,
    )
    yield process.wait_ready().url
    process.stop()


async def test_sdk_thread_round_trip(platform_url):
    from langgraph_sdk import get_client

    client = get_client(url=platform_url)
    assert [a["graph_id"] for a in await client.assistants.search()] == ["domain_router"]
    thread = await client.threads.create()
    state = await client.runs.wait(
        thread["thread_id"], "domain_router", input={"question": "미분계수의 정의는?"}
    )
    assert state["answer"] == "[fake-scripted] 답변: 미분계수의 정의는?"
    assert (state["routing"]["expert"], state["routing"]["reason"]) == ("math", "confident")

    # A second turn on the same thread: the platform's checkpointer keeps the conversation.
    follow_up = {"messages": [{"role": "user", "content": f"적분은? {FAIL_MARKER}"}]}
    state = await client.runs.wait(thread["thread_id"], "domain_router", input=follow_up)
    assert state["routing"]["reason"] == "expert_error"
    assert state["answer"].startswith("[fake-answer]")
    assert len(state["messages"]) == 4

    stream = client.runs.stream(
        thread["thread_id"], "domain_router", input={"question": "극한은?"}, stream_mode="custom"
    )
    events = [part.data["event"] async for part in stream if part.event == "custom"]
    assert events == ["routing_decision", "routing_complete"]


def test_remote_graph_routes_pins_and_keeps_a_two_turn_thread(platform_url):
    from langgraph.pregel.remote import RemoteGraph
    from langgraph_sdk import get_sync_client

    graph = RemoteGraph("domain_router", url=platform_url)
    state = graph.invoke({"question": "미분계수의 정의는?"})
    assert state["answer"] == "[fake-scripted] 답변: 미분계수의 정의는?"
    assert (state["routing"]["expert"], state["routing"]["reason"]) == ("math", "confident")
    pinned = graph.invoke({"question": "미분계수의 정의는?", "pinned_expert": "general"})
    assert (pinned["routing"]["expert"], pinned["routing"]["reason"]) == ("general", "pinned")

    thread = get_sync_client(url=platform_url).threads.create()
    config = {"configurable": {"thread_id": thread["thread_id"]}}
    graph.invoke({"question": "극한의 정의는?"}, config)
    second = graph.invoke({"messages": [{"role": "user", "content": "연속은?"}]}, config)
    assert [m["content"] for m in second["messages"]] == [
        "극한의 정의는?",
        "[fake-scripted] 답변: 극한의 정의는?",
        "연속은?",
        "[fake-scripted] 답변: 연속은?",
    ]
    assert second["routing"]["reason"] == "confident"

"""The Runnables and the request boundary under hostile input: clear errors, never deep ones."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_domain_router import DomainClassifier, DomainPrediction, DomainRouter
from langchain_domain_router._inputs import read_question
from langchain_domain_router.server import RouterMetrics, ServerSettings
from langchain_domain_router.server._limits import (
    LimitError,
    LimitsMiddleware,
    decode_json,
    json_depth,
    unicode_problem,
)
from langchain_domain_router.server._requests import parse_router_input, parse_served_input
from tests.conftest import fake_expert, make_config
from tests.hostile_inputs import configs, inputs, json_values, nested

BAD_INPUTS = [
    ("\ud800 미분", ValueError, "the question holds an unpaired surrogate"),
    ([HumanMessage("x\udfff")], ValueError, "message 0's content holds an unpaired surrogate"),
    ({"question": "q", "messages": [SystemMessage("\ud800")]}, ValueError, "message 0's"),
    (["미분", "적분"], TypeError, "item 0 is a str"),
    ({"question": 5}, TypeError, "'question' must be a string"),
    ({"question": "q", "messages": 5}, TypeError, "'messages' must be a list"),
    ({"question": "q", "messages": [5]}, TypeError, "item 0 is a int"),
    ([HumanMessage([{"type": "image_url", "image_url": {"url": "x"}}])], ValueError, "empty"),
    (nested(300, leaf=[]), TypeError, "chat messages"),
    (b"\xff", TypeError, "cannot route a bytes"),
    ("", ValueError, "empty"),
]
BAD_CONFIGS = [
    ("x", TypeError, "config must be a dict"),
    ({"recursion_limit": -1}, ValueError, "recursion_limit"),
    ({"recursion_limit": "x"}, ValueError, "recursion_limit"),
    ({"max_concurrency": 0}, ValueError, "max_concurrency"),
    ({"configurable": "x"}, TypeError, "configurable"),
    ({"tags": "x"}, TypeError, "tags"),
    ({"metadata": 5}, TypeError, "metadata"),
    ({"callbacks": 5}, TypeError, "callbacks"),
]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> DomainClassifier:
    from tests.conftest import build_checkpoint

    model = build_checkpoint(tmp_path_factory.mktemp("hostile"), bias={"Math": 10.0})
    return DomainClassifier.from_pretrained(model)


@pytest.fixture(scope="module")
def router(classifier: DomainClassifier) -> DomainRouter:
    return DomainRouter.from_config(make_config(math=fake_expert("답")), classifier=classifier)


@pytest.fixture(params=["router", "classifier"])
def runnable(request: pytest.FixtureRequest, router: DomainRouter, classifier: DomainClassifier):
    return router if request.param == "router" else classifier


@pytest.mark.parametrize(("value", "error", "match"), BAD_INPUTS)
def test_bad_inputs_raise_clear_errors_on_invoke_stream_and_batch(runnable, value, error, match):
    with pytest.raises(error, match=match):
        runnable.invoke(value)
    with pytest.raises(error, match=match):
        list(runnable.stream(value))
    good, bad = runnable.batch(["미분", value], return_exceptions=True)
    assert isinstance(good, AIMessage | DomainPrediction)
    assert isinstance(bad, error) and re.search(match, str(bad))


@pytest.mark.parametrize(("config", "error", "match"), BAD_CONFIGS)
def test_configs_the_graph_cannot_honour_raise_clear_errors(runnable, config, error, match):
    with pytest.raises(error, match=match):
        runnable.invoke("미분", config)
    with pytest.raises(error, match=match):
        list(runnable.stream("미분", config))
    with pytest.raises(error, match=match):
        runnable.batch(["미분"], config, return_exceptions=True)
    with pytest.raises(error, match=match):
        asyncio.run(runnable.abatch(["미분"], config, return_exceptions=True))
    with pytest.raises(error, match=match):
        asyncio.run(runnable.ainvoke("미분", config))


HUMAN, AI = {"type": "human", "content": "미분"}, {"type": "ai", "content": "답"}


@pytest.mark.parametrize(
    ("value", "served"),
    [
        ([HumanMessage("미분"), AIMessage("답")], [HUMAN, AI]),
        (
            {"messages": [HumanMessage("미분"), SystemMessage("짧게")]},
            {"messages": [HUMAN, {"type": "system", "content": "짧게"}]},
        ),
        (AIMessage("답"), None),
    ],
    ids=["ends-with-ai", "ends-with-system", "ai-message"],
)
def test_a_conversation_not_ending_in_a_question_is_refused_before_the_graph(
    router, classifier, value, served
):
    # Found by the fuzz run: the graph raised this from inside LangGraph (a 500 over HTTP).
    match = "end 'messages' with a human turn"
    with pytest.raises(ValueError, match=match):
        read_question(value)  # the router's input check, before the graph runs
    with pytest.raises(ValueError, match=match):
        router.invoke(value)
    with pytest.raises(ValueError, match=match):
        list(router.stream(value))
    assert isinstance(router.batch([value], return_exceptions=True)[0], ValueError)
    if served is not None:  # the same input as JSON: refused for /router, read by /classify
        with pytest.raises(ValueError, match=f"^input: the router needs a question.*{match}"):
            parse_router_input(served)
        assert classifier.invoke(parse_served_input(served)).label == "Math"


def test_batch_takes_a_list_not_a_string(runnable):
    with pytest.raises(TypeError, match="batch takes a list of inputs, not a str"):
        runnable.batch("미분")
    with pytest.raises(TypeError, match="batch takes a list of inputs, not a str"):
        asyncio.run(runnable.abatch("미분"))
    assert asyncio.run(runnable.abatch([])) == []


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=inputs, config=configs)
def test_any_input_is_answered_or_refused_with_a_value_or_type_error(router, value, config):
    for call in (router.invoke, lambda v, c: list(router.stream(v, c))):
        try:
            call(value, config)
        except (ValueError, TypeError) as exc:
            assert str(exc)
    results = router.batch([value], None, return_exceptions=True)
    assert isinstance(results[0], AIMessage | ValueError | TypeError)


@settings(max_examples=200, deadline=None, database=None)
@given(value=json_values | inputs)
def test_served_input_validation_raises_only_value_errors_naming_the_field(value):
    try:
        parse_served_input(value)
    except ValueError as exc:
        assert str(exc).startswith("input")


@pytest.mark.parametrize(
    ("text", "depth"),
    [("{}", 1), ('{"a": [[1]]}', 3), ('"[[[["', 0), ('{"a": "]]]", "b": [{}]}', 3)],
)
def test_json_depth_ignores_brackets_in_strings(text, depth):
    assert json_depth(text) == depth


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b'{"input": "\xff"}', 400, "invalid_utf8"),
        (b"[" * 100_000, 422, "too_deep"),
        (b"{not json", 422, "invalid_json"),
    ],
)
def test_decode_json_refuses_what_the_graph_cannot_take(body, status, reason):
    with pytest.raises(LimitError) as caught:
        decode_json(body, 32)
    assert (caught.value.status, caught.value.reason) == (status, reason)
    assert decode_json(b'{"input": "\\ud83d\\ude00"}', 32) == {"input": "😀"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"input": "\ud800"}, "input holds an unpaired surrogate (U+D800) at index 0"),
        ({"config": {"\udfff": 1}}, "config.\\udfff holds an unpaired surrogate (U+DFFF)"),
        (["a", {"b": ["\udc00"]}], "[1].b[0] holds"),
    ],
)
def test_unicode_problem_names_the_field(value, message):
    problem = unicode_problem(value, "")
    assert problem is not None and problem.status == 422 and problem.detail.startswith(message)
    assert unicode_problem({"input": "😀 \x00 \u200b"}, "") is None


def sse_app(fail_with: BaseException, *, langserve_event: bool = False):
    """An ASGI app that starts an event stream, sends one event, then fails."""

    async def app(scope, receive, send) -> None:
        await receive()
        headers = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        event = b"event: data\r\ndata: {}\r\n\r\n"
        await send({"type": "http.response.body", "body": event, "more_body": True})
        if langserve_event:  # what LangServe sends before it re-raises
            error = b'event: error\r\ndata: {"status_code": 500}\r\n\r\n'
            await send({"type": "http.response.body", "body": error, "more_body": True})
        if isinstance(fail_with, TimeoutError):
            await asyncio.sleep(10)
        raise fail_with

    return app


@pytest.mark.parametrize(
    ("app", "status"),
    [
        (sse_app(RuntimeError("boom")), 500),
        (sse_app(RuntimeError("boom"), langserve_event=True), 500),
        (sse_app(TimeoutError()), 504),
    ],
    ids=["error", "langserve-error-event", "timeout"],
)
async def test_a_stream_failing_after_its_first_byte_ends_with_one_error_event(app, status):
    middleware = LimitsMiddleware(app, ServerSettings(request_timeout_s=0.2), RouterMetrics())
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post("/router/stream", json={"input": "미분"})
    events = response.text.split("\r\n\r\n")
    assert events[0] == "event: data\r\ndata: {}" and response.text.count("event: error") == 1
    assert json.loads(events[1].split("data: ", 1)[1])["status_code"] == status


async def test_a_batch_with_bad_items_runs_only_the_good_ones():
    seen: list[Any] = []

    async def batch_app(scope, receive, send) -> None:
        body = json.loads((await receive())["body"])
        seen.append(body)
        content = {"output": [f"answer {i}" for i in body["inputs"]], "metadata": {}}
        payload = json.dumps(content).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": payload})

    settings = ServerSettings(max_input_chars=10)
    middleware = LimitsMiddleware(
        batch_app, settings, RouterMetrics(), validate_input={"/router": parse_served_input}
    )
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        configs = [{"tags": ["a"]}, {"tags": ["b"]}, {"tags": ["c"]}, {"tags": ["d"]}]
        body = {"inputs": ["미분", 5, "적분", "가" * 11, "\ud800"], "config": [*configs, {}]}
        # json.dumps escapes the lone surrogate as \ud800, as a client's JSON would
        response = await http.post("/router/batch", content=json.dumps(body).encode())
    assert response.status_code == 207
    assert seen == [{"inputs": ["미분", "적분"], "config": [configs[0], configs[2]]}]
    output = response.json()["output"]
    assert output[0] == "answer 미분" and output[2] == "answer 적분"
    assert output[1] == {
        "error": {
            "status_code": 422,
            "message": "inputs[1]: must be a string, a list of chat messages, or an object "
            "with 'question' or 'messages', not a number",
        }
    }
    assert output[3]["error"]["message"] == "inputs[3] holds 11 characters; the limit is 10"
    assert output[4]["error"]["message"].startswith("inputs[4] holds an unpaired surrogate")
    assert response.json()["metadata"]["run_ids"] == [None] * 5  # the fake app gives none

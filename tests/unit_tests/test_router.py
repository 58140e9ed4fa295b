import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langgraph.checkpoint.memory import InMemorySaver

from langchain_domain_router import ROUTING_EVENT, DomainClassifier, DomainRouter, RoutingDecision
from tests.conftest import fake_expert, make_config

ANSWER = "미분은 순간 변화율을 구하는 연산입니다"


@pytest.fixture
def router(make_checkpoint):
    classifier = DomainClassifier.from_pretrained(make_checkpoint(bias={"Math": 10.0}))
    return DomainRouter.from_config(make_config(math=fake_expert(ANSWER)), classifier=classifier)


def test_invoke_answers_with_the_routing_record(router):
    answer = router.invoke("미분이 뭐야?")
    assert isinstance(answer, AIMessage)
    assert answer.content == ANSWER and answer.name == "math"
    decision = RoutingDecision.model_validate(answer.response_metadata["routing"])
    assert (decision.domain, decision.expert, decision.reason) == ("Math", "math", "confident")


@pytest.mark.parametrize(
    "value",
    [
        "미분이 뭐야?",
        HumanMessage("미분이 뭐야?"),
        [HumanMessage("안녕"), AIMessage("네"), HumanMessage("미분이 뭐야?")],
        {"question": "미분이 뭐야?"},
        {"messages": [HumanMessage("미분이 뭐야?")]},
        ChatPromptTemplate.from_messages([("human", "{q}")]).invoke({"q": "미분이 뭐야?"}),
    ],
)
def test_accepts_every_input_kind(router, value):
    assert router.invoke(value).content == ANSWER


def test_lcel_composition(router):
    prompt = ChatPromptTemplate.from_messages([("system", "짧게 답해"), ("human", "{question}")])
    chain = prompt | router | StrOutputParser()
    assert chain.invoke({"question": "미분이 뭐야?"}) == ANSWER


def test_stream_yields_expert_tokens_then_the_routing_record(router):
    chunks = list(router.stream("미분이 뭐야?"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert len(chunks) > 3  # token by token, not one blob
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == ANSWER
    assert merged.response_metadata["routing"]["expert"] == "math"


async def test_async_paths_match_sync(router):
    sync = router.invoke("미분이 뭐야?")
    answer = await router.ainvoke("미분이 뭐야?")
    assert answer.content == sync.content
    chunks = [c async for c in router.astream("미분이 뭐야?")]
    assert "".join(c.content for c in chunks) == ANSWER
    events = [e async for e in router.astream_events("미분이 뭐야?", version="v2")]
    kinds = {e["event"] for e in events}
    assert {"on_chat_model_stream", "on_custom_event", "on_chain_end"} <= kinds
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert custom[0]["name"] == ROUTING_EVENT and custom[0]["data"]["expert"] == "math"


def test_batch(router):
    answers = router.batch(["미분", "적분", "극한"])
    assert [a.content for a in answers] == [ANSWER] * 3
    assert len({a.response_metadata["routing"]["request_id"] for a in answers}) == 3


def test_bad_input_is_a_clear_error_not_a_deep_traceback(router):
    with pytest.raises(ValueError, match="empty"):
        router.invoke("   ")
    with pytest.raises(TypeError, match="cannot route"):
        router.invoke(12345)


def test_multi_turn_with_a_checkpointer(make_checkpoint):
    classifier = DomainClassifier.from_pretrained(make_checkpoint(bias={"Math": 10.0}))
    router = DomainRouter.from_config(
        make_config(math=fake_expert(ANSWER)), classifier=classifier, checkpointer=InMemorySaver()
    )
    thread = {"configurable": {"thread_id": "abc"}}
    router.invoke("미분이 뭐야?", thread)
    router.invoke("그럼 적분은?", thread)
    history = router.graph.get_state(thread).values["messages"]
    assert [m.content for m in history] == ["미분이 뭐야?", ANSWER, "그럼 적분은?", ANSWER]


def test_record_feedback_stores_misroutes_as_training_jsonl(make_checkpoint, tmp_path):
    import json

    classifier = DomainClassifier.from_pretrained(make_checkpoint(bias={"Math": 10.0}))
    path = tmp_path / "feedback" / "misroutes.jsonl"
    router = DomainRouter.from_config(
        make_config(math=fake_expert(ANSWER)), classifier=classifier, feedback_path=path
    )
    answer = router.invoke("감가상각비는 어떻게 계산해?")
    streamed = list(router.stream("미분이 뭐야?"))[-1]
    first = answer.response_metadata["routing"]["request_id"]
    second = streamed.response_metadata["routing"]["request_id"]
    record = router.record_feedback(first, "Accounting")
    assert record["misroute"] and record["predicted"] == "Math"
    assert not router.record_feedback(second, "Math")["misroute"]
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["text"], r["label"]) for r in lines] == [
        ("감가상각비는 어떻게 계산해?", "Accounting"),
        ("미분이 뭐야?", "Math"),
    ]
    with pytest.raises(ValueError, match="unknown KMMLU domain 'Acounting'"):
        router.record_feedback(first, "Acounting")
    with pytest.raises(ValueError, match="unknown request_id"):
        router.record_feedback("nope", "Math")
    assert router.record_feedback("other-process", "Law", question="유치권이란?")["text"] == (
        "유치권이란?"
    )


async def test_a_question_is_read_once_per_request_and_its_classified_text_kept(
    make_checkpoint, monkeypatch, reads
):
    from langchain_core.callbacks import BaseCallbackHandler

    classifier = DomainClassifier.from_pretrained(
        make_checkpoint(bias={"Math": 10.0}), context_turns=1
    )
    router = DomainRouter.from_config(make_config(math=fake_expert(ANSWER)), classifier=classifier)
    seen: list[str] = []
    monkeypatch.setattr(router.feedback, "remember", lambda _id, text, _domain: seen.append(text))
    history = [HumanMessage("미분 질문"), AIMessage("네"), HumanMessage("  그럼 적분은? ")]
    router.invoke(history)
    assert reads == [history]
    assert seen == ["미분 질문\n그럼 적분은?"]  # the text the classifier read, context included
    reads.clear()
    await router.ainvoke({"question": "적분"})
    list(router.stream("미분"))
    names: list[str] = []

    class Names(BaseCallbackHandler):
        def on_chain_start(self, serialized, inputs, *, name=None, **kwargs):
            names.append(name)

    router.invoke("극한", {"callbacks": [Names()]})  # the classifier's run takes what was read
    assert reads == [{"question": "적분"}, "미분", "극한"]
    assert "DomainClassifier" in names


def test_a_graph_invoked_on_its_own_reads_its_state_once(make_checkpoint, reads):
    from langchain_domain_router import RouterConfig, build_router_graph

    classifier = DomainClassifier.from_pretrained(make_checkpoint(bias={"Math": 10.0}))
    config = make_config(math=fake_expert(ANSWER))
    graph = build_router_graph(RouterConfig.load(config), classifier=classifier)
    state = graph.invoke({"question": " 미분 "})
    assert (state["question"], state["answer"]) == ("미분", ANSWER)
    assert len(reads) == 1
    with pytest.raises(ValueError, match="unpaired surrogate"):
        graph.invoke({"messages": [HumanMessage("\ud800")]})


def test_the_config_is_loaded_once_where_it_is_handed_in(make_checkpoint, config_loads):
    from langchain_domain_router import build_router_graph

    classifier = DomainClassifier.from_pretrained(make_checkpoint(bias={"Math": 10.0}))
    config = make_config(math=fake_expert(ANSWER))
    assert DomainRouter.from_config(config, classifier=classifier).invoke("미분").content == ANSWER
    assert config_loads == [config]
    build_router_graph(config, classifier=classifier)
    assert config_loads == [config, config]

import os
from pathlib import Path
from typing import Annotated, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from langchain_domain_router import (
    ROUTING_COMPLETE_EVENT,
    ROUTING_EVENT,
    DomainClassifier,
    ExpertProfile,
    RouterConfig,
    RoutingDecision,
    build_router_graph,
)
from tests.conftest import (
    FailingChatModel,
    HangingChatModel,
    PromptRecorder,
    fake_expert,
    make_config,
)

SNAPSHOT = Path(__file__).parent / "snapshots" / "router_graph.mmd"


def route(graph, question="질문입니다"):
    state = graph.invoke({"question": question})
    return state, RoutingDecision.model_validate(state["routing"])


@pytest.mark.parametrize(
    ("bias", "experts", "expert", "reason"),
    [
        ({"Math": 10.0}, ["math", "stem"], "math", "confident"),
        ({"Chemistry": 10.0}, ["math", "stem"], "stem", "confident"),
        ({}, ["math", "stem"], "general", "low_confidence"),
        ({"Math": 5.0, "Law": 5.0}, ["math", "law"], "general", "low_margin"),
        ({"Taxation": 10.0}, ["law", "stem"], "general", "unmapped_domain"),
        # hierarchical fallback: no domain is sure, but STEM clearly is
        (
            {"Math": 4.0, "Chemistry": 4.0, "Biology": 4.0},
            ["math", "stem"],
            "stem",
            "low_confidence",
        ),
        (
            {"Math": 4.0, "Chemistry": 4.0, "Biology": 4.0},
            ["math", "law"],
            "general",
            "low_confidence",
        ),
        ({"Law": 4.0, "Criminal-Law": 4.0, "Patent": 4.0}, ["humss"], "general", "low_confidence"),
    ],
)
def test_each_routing_reason(classifier_for, bias, experts, expert, reason):
    config = make_config(**{name: fake_expert(f"{name} 답변") for name in experts})
    graph = build_router_graph(config, classifier=classifier_for(bias))
    state, decision = route(graph)
    assert (decision.expert, decision.reason) == (expert, reason)
    assert state["answer"] == ("일반 답변입니다" if expert == "general" else f"{expert} 답변")
    assert decision.min_confidence == 0.4 and decision.min_margin == 0.1
    assert decision.model_version == "tiny-test"
    assert decision.classifier_latency_ms > 0 and decision.expert_latency_ms is not None
    assert state["messages"][-1].response_metadata["routing"] == state["routing"]
    assert state["prediction"]["label"] == decision.domain


def test_expert_error_is_retried_then_answered_by_general(classifier_for):
    failing = FailingChatModel(messages=iter([]))
    graph = build_router_graph(make_config(law=failing), classifier=classifier_for({"Law": 10.0}))
    state, decision = route(graph, "채권자대위권의 요건은?")
    assert failing.calls == 2  # one call + max_retries=1
    assert decision.reason == "expert_error"
    assert decision.failed_expert == "law" and decision.expert == "general"
    assert "ConnectionError" in decision.error
    assert state["answer"] == "일반 답변입니다"
    assert [type(m) for m in state["messages"]] == [HumanMessage, AIMessage]


async def test_expert_timeout_goes_to_general_sync_and_async(classifier_for):
    graph = build_router_graph(
        make_config(law=HangingChatModel(messages=iter([]))),
        classifier=classifier_for({"Law": 10.0}),
    )
    for state in (graph.invoke({"question": "q"}), await graph.ainvoke({"question": "q"})):
        decision = RoutingDecision.model_validate(state["routing"])
        assert decision.reason == "expert_error"
        assert "timed out after 0.5s" in decision.error
        assert state["answer"] == "일반 답변입니다"


def test_general_failing_too_still_answers_offline(classifier_for):
    config = RouterConfig(
        experts=[
            ExpertProfile(
                name="law",
                model=FailingChatModel(messages=iter([])),
                domains=["Law"],
                max_retries=0,
            )
        ],
        fallback=ExpertProfile(
            name="general", model=FailingChatModel(messages=iter([])), max_retries=0
        ),
        min_confidence=0.4,
    )
    state, decision = route(build_router_graph(config, classifier=classifier_for({"Law": 10.0})))
    assert decision.reason == "expert_error" and decision.offline
    assert decision.expert == "general"
    assert state["answer"].startswith("[offline expert]")


UNREACHABLE_LAW = RouterConfig(
    experts=[ExpertProfile(name="law", model="openai:gpt-4o", domains=["Law"])],
    fallback=ExpertProfile(name="general", model="openai:gpt-4o-mini"),
    min_confidence=0.4,
)
"""Models that need a key no test sets: the offline expert answers for both."""


@pytest.mark.parametrize(
    ("question", "lines"),
    [
        (
            "질문입니다",
            [
                "이 질문은 'law' 전문가(모델: openai:gpt-4o)가 답합니다.",
                "이유: 법학 분야(1.00)로 분류되어 'law' 전문가가 맡습니다.",
                "모델을 쓰지 못한 이유: API 키가 설정되어 있지 않습니다.",
            ],
        ),
        (
            "What is a lien?",
            [
                "This question would be answered by expert 'law' (model: openai:gpt-4o).",
                "Why: Law (법학) scored 1.00 (margin 1.00); expert 'law' covers it.",
                "Model not used: no API key is set.",
            ],
        ),
    ],
)
def test_unreachable_models_are_served_by_the_labelled_offline_expert_in_the_questions_language(
    classifier_for, monkeypatch, question, lines
):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    graph = build_router_graph(UNREACHABLE_LAW, classifier=classifier_for({"Law": 10.0}))
    state, decision = route(graph, question)
    assert decision.offline and decision.expert == "law"
    assert decision.estimated_cost_usd == 0.0
    answer = state["answer"].splitlines()
    assert answer[0].startswith("[offline expert]")
    assert answer[1:4] == lines  # one language, one reason the model was not used


def test_an_unsure_question_reads_no_domain_with_the_guess_as_a_detail(classifier_for, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    graph = build_router_graph(UNREACHABLE_LAW, classifier=classifier_for({"Law": 1.0}))
    state, decision = route(graph, "오늘 저녁 뭐 먹을까?")
    assert decision.reason == "low_confidence" and decision.expert == "general"
    assert decision.explanation.startswith("no domain: the best guess, Law (법학), scored 0.06")
    assert "이유: 분야를 정할 수 없습니다(가장 가까운 추정: 법학 0.06)." in state["answer"]


def test_thresholds_default_to_the_model_calibration(make_checkpoint):
    classifier = DomainClassifier.from_pretrained(
        make_checkpoint(
            bias={"Math": 2.0}, domain_router={"min_confidence": 0.01, "min_margin": 0.0}
        )
    )
    config = make_config(math=fake_expert("수학"))
    config = config.model_copy(update={"min_confidence": None, "min_margin": None})
    _, decision = route(build_router_graph(config, classifier=classifier))
    assert (decision.min_confidence, decision.min_margin) == (0.01, 0.0)
    assert decision.reason == "confident"


def test_token_usage_is_priced_with_the_profile(classifier_for):
    class MeteredModel(type(fake_expert(""))):
        def _generate(self, *args, **kwargs):
            result = super()._generate(*args, **kwargs)
            result.generations[0].message.usage_metadata = {
                "input_tokens": 1000,
                "output_tokens": 500,
                "total_tokens": 1500,
            }
            return result

    expert = ExpertProfile(
        name="math",
        model=MeteredModel(messages=iter([AIMessage("답")])),
        domains=["Math"],
        input_cost_per_1m=2.0,
        output_cost_per_1m=8.0,
    )
    config = RouterConfig(experts=[expert], fallback=ExpertProfile(name="g"), min_confidence=0.4)
    _, decision = route(build_router_graph(config, classifier=classifier_for({"Math": 10.0})))
    assert (decision.input_tokens, decision.output_tokens) == (1000, 500)
    assert decision.estimated_cost_usd == pytest.approx(0.006)


def test_routing_decision_is_a_custom_stream_event(classifier_for):
    graph = build_router_graph(
        make_config(math=fake_expert("미분은")), classifier=classifier_for({"Math": 10.0})
    )
    custom = list(graph.stream({"question": "미분"}, stream_mode="custom"))
    assert [c["event"] for c in custom] == [ROUTING_EVENT, ROUTING_COMPLETE_EVENT]
    assert custom[0]["routing"]["expert"] == "math"
    assert custom[0]["routing"]["expert_latency_ms"] is None
    assert custom[1]["routing"]["expert_latency_ms"] is not None


def test_empty_question_is_a_clear_error(classifier_for):
    graph = build_router_graph(make_config(), classifier=classifier_for({}))
    with pytest.raises(ValueError, match="needs a question"):
        graph.invoke({"question": "   "})
    with pytest.raises(ValueError, match="empty"):
        graph.invoke({"messages": [HumanMessage("  ")]})


def test_mermaid_drawing_matches_the_snapshot(classifier_for):
    config = make_config(math=fake_expert("a"), law=fake_expert("b"), stem=fake_expert("c"))
    drawing = build_router_graph(config, classifier=classifier_for({})).get_graph().draw_mermaid()
    if os.environ.get("UPDATE_SNAPSHOTS"):  # rewiring on purpose: review the diff, commit it
        SNAPSHOT.write_text(drawing)
    assert drawing == SNAPSHOT.read_text()


def test_works_as_a_subgraph_of_an_agent_graph_sharing_messages(classifier_for):
    router = build_router_graph(
        make_config(math=fake_expert("도함수입니다")), classifier=classifier_for({"Math": 10.0})
    )

    class AgentState(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]
        turns: int

    def count(state: AgentState) -> dict:
        return {"turns": state.get("turns", 0) + 1}

    parent = StateGraph(AgentState)
    parent.add_node("count", count)
    parent.add_node("router", router)
    parent.add_edge(START, "count")
    parent.add_edge("count", "router")
    parent.add_edge("router", END)
    result = parent.compile().invoke({"messages": [HumanMessage("미분이 뭐야?")], "turns": 0})
    assert result["turns"] == 1
    assert [m.content for m in result["messages"]] == ["미분이 뭐야?", "도함수입니다"]
    assert result["messages"][-1].response_metadata["routing"]["expert"] == "math"


def test_checkpointer_keeps_multi_turn_history(classifier_for):
    recorder = PromptRecorder()
    graph = build_router_graph(
        make_config(math=fake_expert("답")),
        classifier=classifier_for({"Math": 10.0}),
        checkpointer=InMemorySaver(),
    )
    thread = {"configurable": {"thread_id": "t1"}, "callbacks": [recorder]}
    graph.invoke({"question": "미분이 뭐야?"}, thread)
    state = graph.invoke({"messages": [HumanMessage("그럼 적분은?")]}, thread)
    assert [m.content for m in state["messages"]] == ["미분이 뭐야?", "답", "그럼 적분은?", "답"]
    assert state["question"] == "그럼 적분은?"
    assert [m.content for m in recorder.prompts[-1]] == ["미분이 뭐야?", "답", "그럼 적분은?"]
    other = graph.invoke({"question": "새 대화"}, {"configurable": {"thread_id": "t2"}})
    assert len(other["messages"]) == 2

"""Cost-aware candidate choice, top-2 fan-out with a merge node, sticky domains."""

import os
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from langchain_domain_router import (
    CandidateModel,
    DomainRouter,
    ExpertProfile,
    RouterConfig,
    RoutingDecision,
    build_router_graph,
)
from langchain_domain_router.graph.policy import choose_candidate
from tests.conftest import FailingChatModel, fake_expert, make_config

SNAPSHOT = Path(__file__).parent / "snapshots" / "router_graph_fan_out.mmd"


def candidates(**quality):
    return [
        CandidateModel(
            model=fake_expert("cheap"),
            input_cost_per_1m=0.1,
            output_cost_per_1m=0.4,
            quality={"Law": quality.get("cheap", 0.5)},
        ),
        CandidateModel(
            model=fake_expert("mid"),
            input_cost_per_1m=1.0,
            output_cost_per_1m=4.0,
            quality={"Law": quality.get("mid", 0.7)},
        ),
        CandidateModel(
            model=fake_expert("strong"),
            input_cost_per_1m=5.0,
            output_cost_per_1m=15.0,
            quality={"Law": quality.get("strong", 0.9)},
        ),
    ]


@pytest.mark.parametrize(
    ("settings", "domain", "chosen", "rule"),
    [
        ({"quality_floor": 0.6}, "Law", 1, "the cheapest with Law quality >= 0.60"),
        ({"quality_floor": 0.4}, "Law", 0, "the cheapest"),
        ({"quality_floor": 0.95}, "Law", 2, "none reaches quality 0.95"),
        ({"quality_floor": 0.1}, "Patent", 0, "none reaches"),  # unmeasured: the cheapest
        ({"selection": "best_under_budget", "budget_per_1m": 6.0}, "Law", 1, "within $6/1M"),
        ({"selection": "best_under_budget", "budget_per_1m": 100}, "Law", 2, "within"),
        ({"selection": "best_under_budget", "budget_per_1m": 0.1}, "Law", 0, "none fits"),
    ],
)
def test_choose_candidate_by_cost_and_quality(settings, domain, chosen, rule):
    profile = ExpertProfile(name="law", candidates=candidates(), **settings)
    index, why = choose_candidate(profile, domain)
    assert index == chosen
    assert rule in why


def test_budget_selection_needs_a_budget():
    with pytest.raises(ValueError, match="budget_per_1m is required"):
        ExpertProfile(name="x", candidates=candidates(), selection="best_under_budget")
    with pytest.raises(ValueError, match=r"candidates.0.quality: unknown KMMLU domain 'Lw'"):
        RouterConfig(
            experts=[ExpertProfile(name="x", candidates=[{"model": "x", "quality": {"Lw": 0.5}}])],
            fallback=ExpertProfile(name="g"),
        )


def test_the_chosen_candidate_answers_in_the_graph(classifier_for):
    law = ExpertProfile(name="law", domains=["Law"], candidates=candidates(), quality_floor=0.6)
    config = RouterConfig(experts=[law], fallback=ExpertProfile(name="g"), min_confidence=0.4)
    state = build_router_graph(config, classifier=classifier_for({"Law": 10.0})).invoke(
        {"question": "소유권 이전 등기"}
    )
    assert state["answer"] == "mid"
    assert "the cheapest with Law quality >= 0.60" in state["routing"]["explanation"]


def fan_out_config_validated(law_model, humss_model, enabled=True):
    fan_out = {"enabled": enabled, "max_margin": 0.15, "min_second_score": 0.2}
    return make_config({"fan_out": fan_out}, law=law_model, humss=humss_model)


CLOSE_CALL = {"Law": 5.0, "Taxation": 4.9}  # Law ~0.45, Taxation ~0.41: both plausible


def test_close_top_two_domains_fan_out_and_merge(classifier_for):
    config = fan_out_config_validated(fake_expert("민법 관점"), fake_expert("세법 관점"))
    graph = build_router_graph(config, classifier=classifier_for(CLOSE_CALL))
    state = graph.invoke({"question": "상속세와 유류분"})
    decision = RoutingDecision.model_validate(state["routing"])
    assert (decision.reason, decision.expert, decision.fan_out) == (
        "fan_out",
        "merge",
        ["law", "humss"],
    )
    assert "[law]\n민법 관점" in state["answer"] and "[humss]\n세법 관점" in state["answer"]
    assert [type(m) for m in state["messages"]] == [HumanMessage, AIMessage]
    assert len(state["messages"][-1].response_metadata["fan_out"]) == 2


def test_fan_out_is_off_by_default_and_leaves_the_graph_unchanged(classifier_for):
    config = fan_out_config_validated(fake_expert("a"), fake_expert("b"), enabled=False)
    graph = build_router_graph(config, classifier=classifier_for(CLOSE_CALL))
    assert "merge" not in graph.nodes
    assert graph.invoke({"question": "q"})["routing"]["reason"] == "low_margin"


def test_fan_out_survives_one_failing_expert_and_falls_back_when_both_fail(classifier_for):
    one = fan_out_config_validated(FailingChatModel(messages=iter([])), fake_expert("세법 관점"))
    state = build_router_graph(one, classifier=classifier_for(CLOSE_CALL)).invoke({"question": "q"})
    assert state["answer"] == "[humss]\n세법 관점"
    assert "law: ConnectionError" in state["routing"]["error"]
    both = fan_out_config_validated(
        FailingChatModel(messages=iter([])), FailingChatModel(messages=iter([]))
    )
    state = build_router_graph(both, classifier=classifier_for(CLOSE_CALL)).invoke(
        {"question": "q"}
    )
    assert state["routing"]["reason"] == "expert_error"
    assert state["routing"]["expert"] == "general"
    assert state["answer"] == "일반 답변입니다"


async def test_streaming_a_fan_out_yields_the_merged_answer(classifier_for):
    config = fan_out_config_validated(fake_expert("민법 관점"), fake_expert("세법 관점"))
    router = DomainRouter.from_config(config, classifier=classifier_for(CLOSE_CALL))
    for chunks in (list(router.stream("q")), [c async for c in router.astream("q")]):
        text = "".join(str(c.content) for c in chunks)
        assert text == "[law]\n민법 관점\n\n[humss]\n세법 관점"
        assert chunks[-1].response_metadata["routing"]["reason"] == "fan_out"


def test_fan_out_mermaid_snapshot(classifier_for):
    config = fan_out_config_validated(fake_expert("a"), fake_expert("b"))
    drawing = build_router_graph(config, classifier=classifier_for({})).get_graph().draw_mermaid()
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(drawing)
    assert drawing == SNAPSHOT.read_text()


@pytest.mark.parametrize("fan_out", [True, False])
def test_the_drawn_edges_are_the_wiring_table(classifier_for, fan_out):
    from langchain_domain_router.graph._wiring import EXPERT, destinations

    config = fan_out_config_validated(fake_expert("a"), fake_expert("b"), enabled=fan_out)
    graph = build_router_graph(config, classifier=classifier_for({}))
    drawn = {(edge.source, edge.target) for edge in graph.get_graph().edges}
    experts = [expert.name for expert in config.experts]
    nodes = ["classify", *experts, "general", *(["merge"] if fan_out else [])]
    table = {
        (node, after)
        for node in nodes
        for after in destinations(EXPERT if node in experts else node, experts, fan_out=fan_out)
    }
    assert drawn == {("__start__", "classify")} | table


def test_the_routing_record_has_the_decision_s_fields():
    from langchain_domain_router.schema import RoutingRecord

    assert set(RoutingRecord.__annotations__) == set(RoutingDecision.model_fields)


def sticky_validated(enabled=True):
    return make_config(
        {"sticky": {"enabled": enabled, "switch_confidence": 0.8}},
        law=fake_expert("법률 답변"),
        math=fake_expert("수학 답변"),
    )


def test_follow_up_sticks_to_the_previous_domain_until_a_confident_switch(classifier_for):
    saver, thread = InMemorySaver(), {"configurable": {"thread_id": "s"}}
    config = sticky_validated()

    def turn(bias, question):
        graph = build_router_graph(config, classifier=classifier_for(bias), checkpointer=saver)
        return RoutingDecision.model_validate(
            graph.invoke({"question": question}, thread)["routing"]
        )

    first = turn({"Law": 10.0}, "근저당권이 뭐야?")
    assert (first.expert, first.reason) == ("law", "confident")
    follow_up = turn({}, "그럼 그건 어떻게 계산해?")  # no domain signal at all
    assert (follow_up.expert, follow_up.reason, follow_up.domain) == ("law", "sticky", "Law")
    weak_switch = turn({"Math": 3.0}, "적분은?")  # Math ~0.31 < switch_confidence
    assert (weak_switch.expert, weak_switch.reason) == ("law", "sticky")
    strong_switch = turn({"Math": 10.0}, "미분방정식의 일반해를 구하라")
    assert (strong_switch.expert, strong_switch.reason) == ("math", "confident")


def test_sticky_reads_the_previous_turn_from_history_and_is_off_by_default(classifier_for):
    previous = AIMessage(
        "법률 답변", response_metadata={"routing": {"domain": "Law", "reason": "confident"}}
    )
    history = {"messages": [HumanMessage("근저당권?"), previous, HumanMessage("그럼 그건?")]}
    on = build_router_graph(sticky_validated(), classifier=classifier_for({}))
    assert on.invoke(history)["routing"]["reason"] == "sticky"
    off = build_router_graph(sticky_validated(enabled=False), classifier=classifier_for({}))
    assert off.invoke(history)["routing"]["reason"] == "low_confidence"

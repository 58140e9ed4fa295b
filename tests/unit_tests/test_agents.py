"""The router inside agents: as a tool of a ReAct agent, and as a node of a parent graph."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import FakeMessagesListChatModel
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from langchain_domain_router import (
    DomainClassifier,
    DomainRouter,
    ExpertProfile,
    RouterConfig,
    build_router_graph,
    router_tool,
)
from tests.conftest import PromptRecorder, fake_expert

EXPERT_ANSWER = "도함수는 순간 변화율입니다"
EXPERT_PROMPT = "당신은 수학 전문가입니다."


class ToolCallingModel(FakeMessagesListChatModel):
    """The agent's model: plays scripted replies (tool calls included), records prompts."""

    seen: list[list[Any]] = []

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolCallingModel:
        return self

    def _generate(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def ask(question: str, call_id: str) -> AIMessage:
    call = {"name": "domain_router", "args": {"question": question}, "id": call_id}
    return AIMessage(content="", tool_calls=[call])


@pytest.fixture(scope="module")
def classifier(math_checkpoint: Any) -> DomainClassifier:
    return DomainClassifier.from_pretrained(math_checkpoint)


def config(policy: str = "conversation") -> RouterConfig:
    math = ExpertProfile(
        name="math",
        model=fake_expert(EXPERT_ANSWER),
        domains=["Math"],
        system_prompt=EXPERT_PROMPT,
        message_policy=policy,
    )
    return RouterConfig(experts=[math], fallback=ExpertProfile(name="general"))


def test_as_tool_is_a_clean_string_tool(classifier):
    tool = DomainRouter.from_config(config(), classifier=classifier).as_tool()
    assert tool.name == "domain_router"
    assert set(tool.args) == {"question"} and tool.args["question"]["type"] == "string"
    assert tool.invoke({"question": "미분이 뭐야?"}) == EXPERT_ANSWER
    with pytest.raises(ValueError, match="one argument"):
        DomainRouter.from_config(config(), classifier=classifier).as_tool(arg_types={"x": int})


@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")
@pytest.mark.parametrize("kind", ["create_react_agent", "create_agent"])
@pytest.mark.parametrize("question", ["   ", "\ud800 미분"])  # refused by the schema; the router
def test_a_question_the_router_refuses_goes_back_to_the_agents_model(classifier, kind, question):
    tool = DomainRouter.from_config(config(), classifier=classifier).as_tool()
    model = ToolCallingModel(
        responses=[ask(question, "call-1"), ask("미분이 뭐야?", "call-2"), AIMessage("됐어요.")]
    )
    agent = create_agent(model, [tool], kind=kind)
    result = agent.invoke({"messages": [HumanMessage("미분 알려줘")]})
    refused, answered = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert refused.status == "error" and "question" in str(refused.content)
    assert answered.content == EXPERT_ANSWER and result["messages"][-1].content == "됐어요."


def create_agent(model: Any, tools: list[Any], *, kind: str, **kwargs: Any) -> Any:
    if kind == "create_agent":
        from langchain.agents import create_agent as create

        return create(model, tools, **kwargs)
    from langgraph.prebuilt import create_react_agent

    return create_react_agent(model, tools, **kwargs)


@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")
@pytest.mark.parametrize(
    ("make_tool", "kind"),
    [
        ("as_tool", "create_react_agent"),
        ("router_tool", "create_react_agent"),
        ("as_tool", "create_agent"),
    ],
)
async def test_react_agent_calls_the_router_over_two_turns(classifier, make_tool, kind):
    router = DomainRouter.from_config(config(), classifier=classifier)
    tool = router.as_tool() if make_tool == "as_tool" else router_tool(router)
    model = ToolCallingModel(
        responses=[
            ask("미분이 뭐야?", "call-1"),
            AIMessage(content="미분은 변화율이래요."),
            ask("그럼 적분은 뭐야?", "call-2"),
            AIMessage(content="적분은 넓이래요."),
        ]
    )
    model.seen = []
    recorder = PromptRecorder()
    agent = create_agent(model, [tool], kind=kind, checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "agent-1"}, "callbacks": [recorder]}
    first = agent.invoke({"messages": [HumanMessage("미분 알려줘")]}, thread)
    second = await agent.ainvoke({"messages": [HumanMessage("적분도")]}, thread)

    assert first["messages"][-1].content == "미분은 변화율이래요."
    assert second["messages"][-1].content == "적분은 넓이래요."
    tools = [m for m in second["messages"] if isinstance(m, ToolMessage)]
    assert [t.content for t in tools] == [EXPERT_ANSWER, EXPERT_ANSWER]
    assert [t.artifact["expert"] for t in tools] == ["math", "math"]  # the routing record
    # The history is kept: turn two's model call sees turn one's exchange.
    assert [m.content for m in model.seen[-1] if isinstance(m, HumanMessage)] == [
        "미분 알려줘",
        "적분도",
    ]
    # The expert saw its own prompt and the question the tool was given, nothing else.
    expert_prompts = [p for p in recorder.prompts if p and p[0].content == EXPERT_PROMPT]
    assert [[m.content for m in p] for p in expert_prompts] == [
        [EXPERT_PROMPT, "미분이 뭐야?"],
        [EXPERT_PROMPT, "그럼 적분은 뭐야?"],
    ]


PARENT_HISTORY = [
    SystemMessage("너는 도구를 쓰는 비서야."),
    HumanMessage("안녕"),
    AIMessage(content="", tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "c1"}]),
    ToolMessage(content="검색 결과", tool_call_id="c1"),
    AIMessage(content="안녕하세요"),
    HumanMessage("미분이 뭐야?"),
]
MERGED_SYSTEM = f"{EXPERT_PROMPT}\n\n너는 도구를 쓰는 비서야."


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("last_human", [("system", EXPERT_PROMPT), ("human", "미분이 뭐야?")]),
        (
            "conversation",
            [
                ("system", MERGED_SYSTEM),
                ("human", "안녕"),
                ("ai", "안녕하세요"),
                ("human", "미분이 뭐야?"),
            ],
        ),
        (
            "all",
            [
                ("system", MERGED_SYSTEM),
                ("human", "안녕"),
                ("ai", ""),
                ("tool", "검색 결과"),
                ("ai", "안녕하세요"),
                ("human", "미분이 뭐야?"),
            ],
        ),
    ],
)
def test_expert_receives_exactly_what_its_policy_names(classifier, policy, expected):
    parent = StateGraph(MessagesState)
    parent.add_node("router", build_router_graph(config(policy), classifier=classifier))
    parent.add_edge(START, "router")
    recorder = PromptRecorder()
    result = parent.compile().invoke({"messages": PARENT_HISTORY}, {"callbacks": [recorder]})
    assert result["messages"][-1].content == EXPERT_ANSWER
    (prompt,) = recorder.prompts
    assert [(m.type, m.content) for m in prompt] == expected
    assert sum(isinstance(m, SystemMessage) for m in prompt) == 1

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate

from langchain_domain_router import KMMLU_DOMAINS, SUPERCATEGORIES
from langchain_domain_router._inputs import read_question


def extract_question(value, context_turns=0):
    return read_question(value, question_last=False).context_text(context_turns)


def test_taxonomy_has_the_45_kmmlu_subjects_with_four_supercategories():
    assert len(KMMLU_DOMAINS) == 45
    assert {"Accounting", "Railway-and-Automotive-Engineering", "Korean-History", "Math"} <= set(
        KMMLU_DOMAINS
    )
    assert {d.supercategory for d in KMMLU_DOMAINS.values()} == set(SUPERCATEGORIES)
    assert KMMLU_DOMAINS["Math"].korean_name == "수학"
    assert KMMLU_DOMAINS["Law"].supercategory == "HUMSS"
    assert all(d.korean_name for d in KMMLU_DOMAINS.values())


def test_read_question_from_every_input_kind():
    history = [
        SystemMessage("너는 도우미야"),
        HumanMessage("회계 질문 있어"),
        AIMessage("네, 말씀하세요"),
        HumanMessage("감가상각이 뭐야?"),
    ]
    prompt = ChatPromptTemplate.from_messages([("human", "{q}")]).invoke({"q": "세법 질문"})
    assert extract_question("  미분이란?  ") == "미분이란?"
    assert extract_question(HumanMessage("적분")) == "적분"
    assert extract_question(history) == "감가상각이 뭐야?"
    assert extract_question(history, context_turns=1) == "회계 질문 있어\n감가상각이 뭐야?"
    assert extract_question(prompt) == "세법 질문"
    assert extract_question({"question": "헌법"}) == "헌법"
    assert extract_question({"messages": history}) == "감가상각이 뭐야?"
    multimodal = HumanMessage(
        content=[
            {"type": "text", "text": "이 그림"},
            {"type": "image_url", "image_url": {"url": "x"}},
        ]
    )
    assert extract_question(multimodal) == "이 그림"
    # for the classifier one message is the question whatever its type, alone or listed
    assert extract_question(AIMessage("답")) == extract_question([AIMessage("답")]) == "답"


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("", ValueError, "empty"),
        ("   \n\t", ValueError, "empty"),
        (
            HumanMessage(content=[{"type": "image_url", "image_url": {"url": "x"}}]),
            ValueError,
            "empty",
        ),
        ([AIMessage("hi"), AIMessage("again")], ValueError, "no human message"),
        (["not a message"], TypeError, "chat messages"),
        ({"text": "wrong key"}, ValueError, "'question'"),
        (42, TypeError, "cannot route a int"),
        (None, TypeError, "cannot route a NoneType"),
    ],
)
def test_bad_inputs_get_clear_errors(value, error, match):
    with pytest.raises(error, match=match):
        extract_question(value)

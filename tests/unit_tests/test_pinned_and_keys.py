"""A pinned expert answers unclassified (reason ``pinned``); bearer keys and exposure checks."""

from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langchain_domain_router import DomainRouter
from langchain_domain_router.server._keys import check_exposure, is_loopback, read_keys
from tests.conftest import FailingChatModel, count_forwards, fake_expert, make_config


@pytest.fixture
def classifier(classifier_for):
    return classifier_for({"Math": 10.0})


@pytest.fixture
def router(classifier):
    config = make_config(math=fake_expert("수학 답변"), law=fake_expert("법률 답변"))
    return DomainRouter.from_config(config, classifier=classifier)


def test_a_pinned_expert_answers_without_classifying(router, classifier, monkeypatch):
    forwards = count_forwards(classifier, monkeypatch)
    answer = router.invoke({"question": "미분이란?", "pinned_expert": "law"})
    routing = answer.response_metadata["routing"]
    assert answer.content == "법률 답변"
    assert (routing["expert"], routing["reason"], routing["domain"]) == ("law", "pinned", "")
    assert forwards == []


async def test_general_can_be_pinned_and_the_stream_says_so(router):
    chunks = [
        c async for c in router.astream({"question": "미분이란?", "pinned_expert": "general"})
    ]
    assert "".join(str(c.content) for c in chunks) == "일반 답변입니다"
    assert chunks[-1].response_metadata["routing"]["reason"] == "pinned"


def test_an_unknown_pin_is_refused_naming_the_experts(router):
    with pytest.raises(ValueError, match=r"unknown expert 'physics'.*\['general', 'law', 'math'\]"):
        router.invoke({"question": "미분이란?", "pinned_expert": "physics"})
    with pytest.raises(TypeError, match="pinned_expert"):
        router.invoke({"question": "미분이란?", "pinned_expert": 5})


def test_a_pinned_expert_that_fails_hands_over_to_general(classifier_for):
    config = make_config(law=FailingChatModel(messages=iter([])))
    router = DomainRouter.from_config(config, classifier=classifier_for({"Math": 10.0}))
    routing = router.invoke({"question": "미분이란?", "pinned_expert": "law"}).response_metadata[
        "routing"
    ]
    assert (routing["expert"], routing["reason"], routing["failed_expert"]) == (
        "general",
        "expert_error",
        "law",
    )


def test_the_pin_holds_for_one_turn_of_a_thread(classifier_for):
    config = make_config(math=fake_expert("수학 답변"), law=fake_expert("법률 답변"))
    classifier = classifier_for({"Math": 10.0})
    router = DomainRouter.from_config(config, classifier=classifier, checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "pin"}}
    first = router.invoke({"question": "미분이란?", "pinned_expert": "law"}, thread)
    second = router.invoke({"question": "적분은?"}, thread)
    assert first.response_metadata["routing"]["reason"] == "pinned"
    assert second.response_metadata["routing"]["expert"] == "math"
    assert second.response_metadata["routing"]["reason"] == "confident"


def test_keys_are_read_one_per_line(tmp_path: Path):
    path = tmp_path / "keys"
    path.write_text("# comment\n\nkey-one\n  key-two  \n", encoding="utf-8")
    assert read_keys(path) == (b"key-one", b"key-two")
    path.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no key"):
        read_keys(path)
    path.write_text("bad key with spaces-Secret\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"keys:1: an API key") as caught:
        read_keys(path)
    assert "Secret" not in str(caught.value)
    with pytest.raises(ValueError, match="cannot read"):
        read_keys(tmp_path / "missing")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True)]
    + [("localhost", True), ("0.0.0.0", False), ("10.0.0.5", False), ("example.org", False)],  # noqa: S104
)
def test_only_loopback_is_served_without_keys(host, loopback):
    assert is_loopback(host) is loopback
    if loopback:
        check_exposure(host, keys_file=None, allow_unauthenticated=False)
    else:
        with pytest.raises(ValueError, match="refusing to serve"):
            check_exposure(host, keys_file=None, allow_unauthenticated=False)
    check_exposure(host, keys_file="keys.txt", allow_unauthenticated=False)
    check_exposure(host, keys_file=None, allow_unauthenticated=True)

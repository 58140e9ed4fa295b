"""``stream`` delivers exactly the text ``invoke`` returns, whatever the expert does."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from langchain_domain_router import DomainClassifier, DomainRouter
from langchain_domain_router.graph._streaming import STREAM_RESET
from tests.conftest import fake_expert, make_config, shown_text

ANSWER = "미분은 순간 변화율을 구하는 연산입니다"
GENERAL = "일반 답변입니다"


class GenerateOnlyModel(BaseChatModel):
    """A chat model that implements only ``_generate``: it never streams."""

    @property
    def _llm_type(self) -> str:
        return "generate-only"

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=ANSWER))])


class BreakingModel(BaseChatModel):
    """Streams half of ``ANSWER`` and then fails, on every call or on every other call.

    Its chunks carry a provider's message id, as OpenAI's do; langchain-core's closing
    chunk then carries the run id instead, so ids change within one call.
    """

    every_call: bool = True
    never: bool = False
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "breaking"

    def _stream(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Iterator[Any]:
        self.calls += 1
        breaks = not self.never and (self.every_call or self.calls % 2 == 1)
        words = ANSWER.split(" ")
        for index, word in enumerate(words):
            if breaks and index == len(words) // 2:
                msg = "connection reset by peer half-way"
                raise ConnectionError(msg)
            provider_id = f"chatcmpl-{self.calls}"
            yield ChatGenerationChunk(message=AIMessageChunk(content=word, id=provider_id))
            if index < len(words) - 1:
                yield ChatGenerationChunk(message=AIMessageChunk(content=" ", id=provider_id))

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        chunks = list(self._stream(messages))
        text = "".join(str(c.message.content) for c in chunks)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


EXPERTS = {
    "streaming": (lambda: fake_expert(ANSWER), ANSWER),
    "non_streaming": (GenerateOnlyModel, ANSWER),
    "disable_streaming": (
        lambda: GenericFakeChatModel(
            messages=(AIMessage(content=ANSWER) for _ in itertools.count()),
            disable_streaming=True,
        ),
        ANSWER,
    ),
    "provider_ids": (lambda: BreakingModel(never=True), ANSWER),
    "retried": (lambda: BreakingModel(every_call=False), ANSWER),
    "failed_over": (BreakingModel, GENERAL),
}


@pytest.fixture(scope="module")
def classifier(math_checkpoint: Any) -> DomainClassifier:
    return DomainClassifier.from_pretrained(math_checkpoint)


def build_router(classifier: DomainClassifier, expert: BaseChatModel, buffer: str) -> DomainRouter:
    config = make_config({"streaming": {"buffer": buffer}}, math=expert)
    return DomainRouter.from_config(config, classifier=classifier)


def resets(chunks: list[AIMessageChunk]) -> int:
    return sum(bool(c.response_metadata.get(STREAM_RESET)) for c in chunks)


@pytest.mark.parametrize("kind", list(EXPERTS))
@pytest.mark.parametrize("buffer", ["attempt", "off"])
async def test_stream_equals_invoke(classifier, kind, buffer):
    factory, expected = EXPERTS[kind]
    router = build_router(classifier, factory(), buffer)
    answer = router.invoke("미분이 뭐야?")
    assert answer.content == expected
    chunks = list(router.stream("미분이 뭐야?"))
    achunks = [c async for c in router.astream("미분이 뭐야?")]
    for streamed in (chunks, achunks):
        assert all(isinstance(c, AIMessageChunk) for c in streamed)
        assert shown_text(streamed) == expected
        routing = streamed[-1].response_metadata["routing"]
        assert routing["expert"] == answer.response_metadata["routing"]["expert"]
        if buffer == "attempt":  # nothing partial ever reaches the client: plain concatenation
            assert resets(streamed) == 0
            assert "".join(str(c.text) for c in streamed) == expected
        elif kind in ("retried", "failed_over"):  # live tokens of a failed attempt, then reset
            assert resets(streamed) >= 1
        else:  # one attempt: live tokens, never a reset
            assert resets(streamed) == 0 and "".join(str(c.text) for c in streamed) == expected


async def test_live_tokens_stream_token_by_token(classifier):
    router = build_router(classifier, fake_expert(ANSWER), "off")
    chunks = list(router.stream("미분이 뭐야?"))
    assert len(chunks) > 3 and resets(chunks) == 0
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == ANSWER and merged.response_metadata["routing"]["expert"] == "math"


def test_a_failed_over_stream_says_why(classifier):
    router = build_router(classifier, BreakingModel(), "attempt")
    routing = list(router.stream("미분이 뭐야?"))[-1].response_metadata["routing"]
    assert (routing["reason"], routing["failed_expert"]) == ("expert_error", "math")
    assert "half-way" in routing["error"]

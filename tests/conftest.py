"""Shared fixtures: tiny real ELECTRA checkpoints built on the fly, and fake experts."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage

from langchain_domain_router import KMMLU_DOMAINS, ExpertProfile, RouterConfig

SAMPLE_LINES = [
    "미분계수의 정의를 설명해 주세요",
    "근저당권 설정 등기는 어떻게 하나요?",
    "법인세 신고 기한이 언제예요?",
    "What is a Fourier transform?",
    "냉동기의 성적계수를 구하는 방법",
    "조선 후기 실학자의 주장으로 옳은 것은?",
    "오늘 점심 뭐 먹지?",
]

CheckpointFactory = Callable[..., Path]


def wordpiece(lines: list[str], *, vocab_size: int) -> Any:
    """A WordPiece ``tokenizers.Tokenizer`` trained on ``lines`` (NFKC, BERT pre-tokenizer)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))  # noqa: S106 - a token, not a secret
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        lines, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special)
    )
    return tok


def build_checkpoint(
    directory: Path,
    *,
    bias: Mapping[str, float] | None = None,
    labels: list[str] | None = None,
    domain_router: Mapping[str, object] | None = None,
) -> Path:
    """Save a tiny ELECTRA classifier whose logits equal ``bias`` (0 for other labels).

    The output projection's weights are zeroed, so the prediction is set by the bias
    alone: a real checkpoint, loaded through ``from_pretrained``, with known outputs.
    """
    import torch
    from transformers import ElectraConfig, ElectraForSequenceClassification, ElectraTokenizerFast

    labels = labels or list(KMMLU_DOMAINS)
    tok = wordpiece(SAMPLE_LINES, vocab_size=300)
    tokenizer = ElectraTokenizerFast(tokenizer_object=tok, model_max_length=64)
    config = ElectraConfig(
        vocab_size=tok.get_vocab_size(),
        embedding_size=16,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="single_label_classification",
    )
    config.domain_router = dict(domain_router or {"model_version": "tiny-test"})
    torch.manual_seed(0)
    model = ElectraForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.out_proj.weight.zero_()
        model.classifier.out_proj.bias.zero_()
        for label, value in (bias or {}).items():
            model.classifier.out_proj.bias[labels.index(label)] = value
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def make_checkpoint(tmp_path: Path) -> CheckpointFactory:
    counter = iter(range(1_000))

    def factory(**kwargs: object) -> Path:
        return build_checkpoint(tmp_path / f"model-{next(counter)}", **kwargs)  # type: ignore[arg-type]

    return factory


@pytest.fixture
def classifier_for(make_checkpoint: CheckpointFactory) -> Callable[..., Any]:
    """Build a classifier over a tiny checkpoint whose logits are ``bias``."""
    from langchain_domain_router import DomainClassifier

    def build(bias: Mapping[str, float]) -> DomainClassifier:
        return DomainClassifier.from_pretrained(make_checkpoint(bias=bias))

    return build


@pytest.fixture(scope="session")
def math_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that is confident every question is about Math."""
    return build_checkpoint(tmp_path_factory.mktemp("math"), bias={"Math": 10.0})


class FailingChatModel(GenericFakeChatModel):
    """An expert whose endpoint is down: every call raises, and calls are counted."""

    calls: int = 0

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        msg = "endpoint returned 500"
        raise ConnectionError(msg)

    def _stream(self, *args: Any, **kwargs: Any) -> Any:
        return self._generate(*args, **kwargs)


class HangingChatModel(GenericFakeChatModel):
    """An expert that hangs far longer than any timeout."""

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(3)
        return super()._generate(*args, **kwargs)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(3)
        return await super()._agenerate(*args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(3)
        yield from super()._stream(*args, **kwargs)

    async def _astream(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(3)
        async for chunk in super()._astream(*args, **kwargs):
            yield chunk


def fake_expert(text: str) -> GenericFakeChatModel:
    """An expert that answers ``text`` (streamed word by word), forever."""
    return GenericFakeChatModel(messages=(AIMessage(content=text) for _ in itertools.count()))


class PromptRecorder(BaseCallbackHandler):
    """Records the messages each chat model receives."""

    def __init__(self) -> None:
        self.prompts: list[list[BaseMessage]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.prompts.extend(messages)


def make_config(settings: Mapping[str, Any] | None = None, **experts: Any) -> RouterConfig:
    """A config with one expert per keyword (name=model) plus fake ``general``.

    Experts ``stem``/``humss`` cover their supercategories, ``law`` covers Law and
    Criminal-Law, ``math`` covers Math. ``settings`` are further ``RouterConfig`` fields.
    """
    coverage = {
        "stem": {"supercategories": ["STEM"]},
        "humss": {"supercategories": ["HUMSS"]},
        "law": {"domains": ["Law", "Criminal-Law"]},
        "math": {"domains": ["Math"]},
    }
    profiles = [
        ExpertProfile(name=name, model=model, max_retries=1, timeout_s=0.5, **coverage[name])
        for name, model in experts.items()
    ]
    return RouterConfig(
        experts=profiles,
        fallback=ExpertProfile(name="general", model=fake_expert("일반 답변입니다")),
        min_confidence=0.4,
        min_margin=0.1,
        **(settings or {}),
    )


def count_forwards(classifier: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the batch size of every forward pass ``classifier`` runs."""
    sizes: list[int] = []
    original = classifier.model.forward

    def counting_forward(*args: Any, **kwargs: Any) -> Any:
        sizes.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(classifier.model, "forward", counting_forward)
    return sizes


def shown_text(chunks: list[Any]) -> str:
    """What a client that honours ``stream_reset`` chunks shows: the text after the last."""
    from langchain_domain_router import STREAM_RESET

    shown: list[str] = []
    for chunk in chunks:
        if chunk.response_metadata.get(STREAM_RESET):
            shown.clear()
        else:
            shown.append(str(chunk.text))
    return "".join(shown)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The inputs of every call of ``read_question``, the one check of a question."""
    import sys

    from langchain_domain_router import _inputs

    calls: list[Any] = []
    original = _inputs.read_question

    def counted(value: Any, **kwargs: Any) -> Any:
        calls.append(value)
        return original(value, **kwargs)

    for module in list(sys.modules.values()):
        named = getattr(module, "__name__", "")
        if named.startswith("langchain_domain_router") and vars(module).get("read_question"):
            monkeypatch.setattr(module, "read_question", counted)
    return calls


@pytest.fixture
def config_loads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The argument of every ``RouterConfig.load`` call."""
    from langchain_domain_router import RouterConfig

    calls: list[Any] = []
    load = RouterConfig.load.__func__  # type: ignore[attr-defined]

    def counted(cls: type[RouterConfig], config: Any = None) -> RouterConfig:
        calls.append(config)
        return load(cls, config)

    monkeypatch.setattr(RouterConfig, "load", classmethod(counted))
    return calls

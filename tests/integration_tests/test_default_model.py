"""The embedded default model: loads offline, is small, and routes clear questions sensibly."""

import importlib.util
import random
from pathlib import Path

import pytest

from langchain_domain_router import KMMLU_DOMAINS, DomainClassifier, DomainRouter, RouterConfig
from langchain_domain_router.classifier import default_model_path

KMMLU = Path(__file__).parents[2].parent / "shared" / "data" / "kmmlu"
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None

pytestmark = pytest.mark.skipif(
    not (default_model_path() / "config.json").is_file(), reason="no embedded default model"
)

# Networking sits in two KMMLU subjects (Computer-Science's security exam asks about DNS and
# TCP too), so either is a right answer for the TCP/UDP question.
CLEAR = [
    ("형법상 정당방위가 성립하기 위한 요건은 무엇인가요?", {"Criminal-Law"}),
    ("부가가치세 과세표준은 어떻게 계산하나요?", {"Taxation"}),
    (
        "Explain the difference between TCP and UDP.",
        {"Information-Technology", "Computer-Science"},
    ),
    ("광합성의 명반응과 암반응의 차이를 설명해 주세요", {"Biology"}),
    ("조선 후기 실학자들의 주장을 정리해 줘", {"Korean-History"}),
]


@pytest.fixture(scope="module")
def classifier() -> DomainClassifier:
    return DomainClassifier.default().load()


def test_is_small_and_self_describing(classifier):
    size = sum(f.stat().st_size for f in default_model_path().rglob("*") if f.is_file())
    assert size <= 60 * 1024 * 1024
    assert sorted(classifier.labels) == sorted(KMMLU_DOMAINS)
    settings = classifier.calibration
    assert {
        "temperature",
        "min_confidence",
        "model_version",
        "max_length",
    } <= settings.model_fields_set
    assert settings.temperature > 0


def test_is_r13_1_and_the_frozen_e5_head_averaged(classifier):
    from langchain_domain_router.classifier import EnsembleSpec

    spec = EnsembleSpec.read(default_model_path())
    assert spec is not None and spec.features == "member-1"
    assert [(m.path, m.weight) for m in spec.members] == [("member-0", 0.5), ("member-1", 0.5)]
    # the e5 member's pooled output: what fit-domains builds on, from its 4-bit graph
    assert classifier.features(["미분이란?"]).shape == (1, 384)
    alone = DomainClassifier.from_pretrained(default_model_path() / "member-0")
    assert alone.model_version == "kmmlu-electra-small-2026.12.03-r13.1"
    assert alone.invoke("부가가치세 과세표준은 어떻게 계산하나요?").label == "Taxation"


@pytest.mark.parametrize(("question", "domains"), CLEAR)
def test_clear_questions_have_their_domain_in_the_top_3(classifier, question, domains):
    prediction = classifier.invoke(question)
    assert domains & {s.label for s in prediction.top_k[:3]}, prediction.top_k[:3]


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_questions_of_a_few_characters_are_classified(backend):
    """Shorter than the character branch's 5-grams: no shape error from either backend."""
    classifier = DomainClassifier.default(backend=backend)
    predictions = classifier.batch(["a", "법", "abc", "?", "부가가치세 과세표준은?"])
    assert [len(p.top_k) > 0 for p in predictions] == [True] * 5
    assert classifier.invoke("세").label in KMMLU_DOMAINS


def test_routes_end_to_end_offline(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    answer = DomainRouter.from_config().invoke("형법상 정당방위가 성립하기 위한 요건은?")
    routing = answer.response_metadata["routing"]
    assert answer.content.startswith("[offline expert]")
    assert routing["offline"] and routing["expert"] in {"law", "humanities", "general"}
    assert routing["model_version"] == DomainClassifier.default().model_version


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
def test_the_default_runs_the_shipped_onnx_export_and_is_loaded_once(classifier):
    assert classifier.backend == "auto" and classifier.resolved_backend == "onnx"
    from_config = DomainClassifier.from_settings(RouterConfig.example().classifier)
    assert from_config.model is classifier.model
    assert DomainClassifier.default(top_k=3).model is classifier.model


@pytest.mark.shared_data
@pytest.mark.skipif(not KMMLU.is_dir(), reason="needs ../shared/data/kmmlu")
@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime not installed")
def test_the_default_path_is_as_accurate_as_torch_on_a_kmmlu_sample(classifier):
    from langchain_domain_router.data import load_kmmlu

    rows = random.Random(13).sample(load_kmmlu(KMMLU, "test"), 2000)
    texts, labels = [r.text for r in rows], [r.label for r in rows]
    torch_path = DomainClassifier.default(backend="torch", batch_size=64)

    def accuracy(found: DomainClassifier) -> float:
        got = [p.label for p in found.classify_texts(texts)]
        return 100 * sum(g == t for g, t in zip(got, labels, strict=True)) / len(texts)

    fast, reference = accuracy(classifier), accuracy(torch_path)
    assert reference > 40, reference  # the sample and the model are what they claim
    assert abs(fast - reference) <= 0.5, (fast, reference)

"""The top-label confidence map that ``Calibration`` applies after the temperature."""

import numpy as np
import pytest

from langchain_domain_router import DomainClassifier
from langchain_domain_router.classifier import Calibration, probabilities, top_log_odds


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _logits(rows: int = 500, labels: int = 45) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(rows, labels)) * rng.uniform(0.5, 6, size=(rows, 1))


def test_top_log_odds_splits_the_softmax_exactly() -> None:
    logits = _logits()
    softmax = probabilities(logits)
    top, log_odds, rest = top_log_odds(logits)
    rows = np.arange(len(logits))
    assert (top == softmax.argmax(1)).all()
    assert _sigmoid(log_odds) == pytest.approx(softmax[rows, top])
    others = softmax.copy()
    others[rows, top] = 0
    assert rest * (1 - _sigmoid(log_odds))[:, None] == pytest.approx(others, abs=1e-12)


@pytest.mark.parametrize(
    ("slope", "bias", "held_up"), [(0.5, 0.1, False), (2.0, -1.0, False), (0.01, -6.0, True)]
)
def test_the_map_moves_only_the_top_confidence_and_keeps_the_ranking(
    slope: float, bias: float, held_up: bool
) -> None:
    logits = _logits()
    plain = probabilities(logits, 2.0)
    mapped = probabilities(logits, 2.0, confidence_slope=slope, confidence_bias=bias)
    rows = np.arange(len(logits))
    top = plain.argmax(1)
    assert mapped.sum(1) == pytest.approx(np.ones(len(logits)))
    assert (mapped.argmax(1) == top).all()
    assert (np.argsort(-mapped, 1)[:, 1:] == np.argsort(-plain, 1)[:, 1:]).all()
    _, log_odds, _ = top_log_odds(logits / 2.0)
    expected = _sigmoid(slope * log_odds + bias)
    runner_up = np.sort(mapped, 1)[:, -2]
    free = expected > runner_up  # where the map did not have to hold the top class up
    assert free.any() != held_up  # the last map would put every top class below the next
    assert mapped[rows, top][free] == pytest.approx(expected[free])
    assert (mapped[rows, top] > runner_up).all()


def test_the_map_is_finite_on_extreme_logits() -> None:
    logits = np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0], [-1e4, -1e4, -1e4]])
    mapped = probabilities(logits, confidence_slope=0.5, confidence_bias=0.2)
    assert np.isfinite(mapped).all()
    assert mapped.sum(1) == pytest.approx(np.ones(3))


def test_a_checkpoint_without_a_map_reads_as_the_identity() -> None:
    calibration = Calibration.of({"domain_router": {"temperature": 2.0}})
    assert (calibration.confidence_slope, calibration.confidence_bias) == (1.0, 0.0)
    logits = _logits(20)
    assert probabilities(logits, 2.0) == pytest.approx(
        probabilities(logits, 2.0, confidence_slope=1.0, confidence_bias=0.0)
    )


def test_the_classifier_reports_mapped_confidences(make_checkpoint) -> None:
    block = {"temperature": 1.5, "confidence_slope": 0.4, "confidence_bias": -0.3}
    classifier = DomainClassifier.from_pretrained(
        make_checkpoint(bias={"Law": 8.0}, domain_router=block)
    )
    logits = classifier.predict_logits(["형법 질문"])
    expected = probabilities(logits, 1.5, confidence_slope=0.4, confidence_bias=-0.3)[0]
    prediction = classifier.invoke("형법 질문")
    assert prediction.label == "Law"
    assert prediction.score == pytest.approx(expected.max())
    assert prediction.score < probabilities(logits, 1.5)[0].max() - 0.1  # a sure row: lowered


def test_the_classifier_adds_the_label_bias_before_the_softmax(make_checkpoint) -> None:
    block = {"temperature": 2.0, "label_bias": {"Law": -0.5, "Unknown-Label": 3.0}}
    classifier = DomainClassifier.from_pretrained(
        make_checkpoint(bias={"Law": 2.0, "Math": 1.6}, domain_router=block)
    )
    logits = classifier.predict_logits(["질문"])
    assert classifier.labels[int(logits.argmax())] == "Law"
    bias = [-0.5 if label == "Law" else 0.0 for label in classifier.labels]
    expected = probabilities(logits, 2.0, label_bias=bias)[0]
    prediction = classifier.invoke("질문")
    assert prediction.label == "Math"
    assert prediction.score == pytest.approx(expected.max())

"""Fitting the routing block: the confidence map and where it is fitted."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from langchain_domain_router.classifier import Calibration, probabilities
from langchain_domain_router.training._calibration import (
    choose_min_confidence,
    fit_calibration,
    fit_confidence_map,
    fit_label_bias,
    fit_temperature,
)


def _rows(rng: np.random.Generator, n: int, slope: float, bias: float) -> tuple[np.ndarray, ...]:
    """Two-class logits whose top class is right with ``sigmoid(slope * log_odds + bias)``."""
    log_odds = rng.uniform(0, 6, size=n)
    logits = np.stack([log_odds, np.zeros(n)], axis=1)
    right = rng.random(n) < 1 / (1 + np.exp(-(slope * log_odds + bias)))
    return logits, np.where(right, 0, 1)


_NO_BIAS = {"label_names": ["a", "b"], "train_counts": None}


def test_the_map_recovers_a_known_slope_and_bias() -> None:
    logits, labels = _rows(np.random.default_rng(0), 20_000, 0.5, 0.3)
    slope, bias = fit_confidence_map(logits, labels)
    assert slope == pytest.approx(0.5, abs=0.05)
    assert bias == pytest.approx(0.3, abs=0.1)


def test_the_map_is_the_identity_when_every_row_is_right() -> None:
    logits = np.array([[3.0, 0.0], [2.0, 0.0]])
    assert fit_confidence_map(logits, np.array([0, 0])) == (1.0, 0.0)


def test_the_map_is_fitted_after_map_from_and_the_threshold_on_mapped_scores() -> None:
    rng = np.random.default_rng(1)
    held, held_y = _rows(rng, 3000, 3.0, 2.0)  # the over-familiar hold-out: nearly all right
    fresh, fresh_y = _rows(rng, 3000, 0.4, -0.2)
    logits, labels = np.concatenate([held, fresh]), np.concatenate([held_y, fresh_y])
    ood = rng.normal(size=(500, 2)) * 0.3
    calibration = fit_calibration(
        logits, labels, ood, **_NO_BIAS, map_from=len(held), max_length=64, model_version="v"
    )
    temperature = fit_temperature(logits, labels)
    slope, bias = fit_confidence_map(fresh / temperature, fresh_y)
    assert calibration.temperature == pytest.approx(temperature, abs=1e-4)
    assert (calibration.confidence_slope, calibration.confidence_bias) == pytest.approx(
        (slope, bias), abs=1e-4
    )

    def confidences(rows: np.ndarray) -> np.ndarray:
        return probabilities(rows, temperature, confidence_slope=slope, confidence_bias=bias).max(1)

    threshold = choose_min_confidence(confidences(logits), confidences(ood))
    assert calibration.min_confidence == pytest.approx(threshold, abs=1e-4)
    assert threshold != pytest.approx(
        choose_min_confidence(
            probabilities(logits, temperature).max(1), probabilities(ood, temperature).max(1)
        ),
        abs=1e-3,
    )


def _fit_without_ood(
    logits: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    counts: np.ndarray | None = None,
    *,
    map_from: int = 0,
) -> Calibration:
    return fit_calibration(
        logits,
        labels,
        np.zeros((0, len(names))),
        label_names=names,
        train_counts=counts,
        map_from=map_from,
        max_length=64,
        model_version=None,
    )


def test_with_nothing_after_map_from_the_map_uses_every_row() -> None:
    logits, labels = _rows(np.random.default_rng(2), 2000, 0.6, 0.0)
    calibration = _fit_without_ood(logits, labels, ["a", "b"], map_from=len(labels))
    slope, _ = fit_confidence_map(logits / calibration.temperature, labels)
    assert calibration.confidence_slope == pytest.approx(slope, abs=1e-3)
    assert calibration.min_confidence == 0.0


def _skewed(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Three balanced labels; the model's logits favour label 0 by 1.5, as if from training."""
    labels = rng.integers(0, 3, size=n)
    logits = rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[labels]
    logits[:, 0] += 1.5
    return logits, labels


def test_label_bias_discounts_the_label_training_saw_most() -> None:
    logits, labels = _skewed(np.random.default_rng(3), 6000)
    counts = np.array([9000, 1000, 1000])
    tau, bias = fit_label_bias(logits, labels, counts)
    assert 0.3 <= tau <= 1.0
    assert bias[0] < bias[1] == pytest.approx(bias[2])
    assert ((logits + bias).argmax(1) == labels).mean() > (logits.argmax(1) == labels).mean()
    calibration = _fit_without_ood(logits, labels, ["Law", "Math", "Taxation"], counts)
    assert calibration.label_bias["Law"] < calibration.label_bias["Math"]
    assert calibration.bias_vector(["Math", "Law", "Biology"]) == [
        calibration.label_bias["Math"],
        calibration.label_bias["Law"],
        0.0,
    ]


def test_no_label_bias_when_the_counts_are_even_or_unknown() -> None:
    logits, labels = _skewed(np.random.default_rng(4), 3000)
    tau, bias = fit_label_bias(logits, labels, np.array([10, 10, 10]))
    assert not bias.any()
    calibration = _fit_without_ood(logits, labels, ["a", "b", "c"])
    assert calibration.label_bias == {}
    assert calibration.bias_vector(["a", "b", "c"]) is None

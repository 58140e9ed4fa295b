"""Fitting the routing block: the confidence map and where it is fitted."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from langchain_domain_router.classifier import probabilities
from langchain_domain_router.training._calibration import (
    choose_min_confidence,
    fit_calibration,
    fit_confidence_map,
    fit_temperature,
)


def _rows(rng: np.random.Generator, n: int, slope: float, bias: float) -> tuple[np.ndarray, ...]:
    """Two-class logits whose top class is right with ``sigmoid(slope * log_odds + bias)``."""
    log_odds = rng.uniform(0, 6, size=n)
    logits = np.stack([log_odds, np.zeros(n)], axis=1)
    right = rng.random(n) < 1 / (1 + np.exp(-(slope * log_odds + bias)))
    return logits, np.where(right, 0, 1)


def test_the_map_recovers_a_known_slope_and_bias() -> None:
    logits, labels = _rows(np.random.default_rng(0), 20_000, 0.5, 0.3)
    slope, bias = fit_confidence_map(logits, labels, 1.0)
    assert slope == pytest.approx(0.5, abs=0.05)
    assert bias == pytest.approx(0.3, abs=0.1)


def test_the_map_is_the_identity_when_every_row_is_right() -> None:
    logits = np.array([[3.0, 0.0], [2.0, 0.0]])
    assert fit_confidence_map(logits, np.array([0, 0]), 1.0) == (1.0, 0.0)


def test_the_map_is_fitted_after_map_from_and_the_threshold_on_mapped_scores() -> None:
    rng = np.random.default_rng(1)
    held, held_y = _rows(rng, 3000, 3.0, 2.0)  # the over-familiar hold-out: nearly all right
    fresh, fresh_y = _rows(rng, 3000, 0.4, -0.2)
    logits, labels = np.concatenate([held, fresh]), np.concatenate([held_y, fresh_y])
    ood = rng.normal(size=(500, 2)) * 0.3
    calibration = fit_calibration(
        logits, labels, ood, map_from=len(held), max_length=64, model_version="v"
    )
    temperature = fit_temperature(logits, labels)
    slope, bias = fit_confidence_map(fresh, fresh_y, temperature)
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


def test_with_nothing_after_map_from_the_map_uses_every_row() -> None:
    logits, labels = _rows(np.random.default_rng(2), 2000, 0.6, 0.0)
    calibration = fit_calibration(
        logits, labels, np.zeros((0, 2)), map_from=len(labels), max_length=64, model_version=None
    )
    temperature = calibration.temperature
    slope, _ = fit_confidence_map(logits, labels, temperature)
    assert calibration.confidence_slope == pytest.approx(slope, abs=1e-3)
    assert calibration.min_confidence == 0.0

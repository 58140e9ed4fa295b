"""Temperature, confidence map and fallback threshold, all fitted on validation data only."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from langchain_domain_router.classifier import Calibration

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

logger = logging.getLogger(__name__)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Return the mean negative log-likelihood of ``labels`` under the scaled softmax."""
    import numpy as np

    from langchain_domain_router.classifier import probabilities

    p = probabilities(logits, temperature)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(p, 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Return the temperature that minimises validation NLL (golden-section on log T).

    Args:
        logits: Validation logits.
        labels: Validation label ids.

    Returns:
        The temperature, in ``[0.05, 20]``.
    """
    import math

    lo, hi = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    return float(math.exp((lo + hi) / 2))


def choose_min_confidence(
    in_domain: np.ndarray, out_of_domain: np.ndarray, *, target: float = 0.90
) -> float:
    """Pick the fallback threshold on validation confidences.

    The threshold is the midpoint between the confidence below which ``target`` of OOD
    questions fall and the one above which ``target`` of in-domain questions stay: when the
    two overlap nowhere it leaves slack on both sides, otherwise both sides miss equally.

    Args:
        in_domain: Top-class confidences of in-domain validation questions.
        out_of_domain: Top-class confidences of OOD validation questions.
        target: The share to get right on each side.

    Returns:
        ``min_confidence``: a question whose top confidence is below it falls back.
    """
    import numpy as np

    ood_cut = float(np.quantile(out_of_domain, target))
    ind_cut = float(np.quantile(in_domain, 1 - target))
    return (ood_cut + ind_cut) / 2


_PRIOR_STRENGTHS = tuple(i / 10 for i in range(11))
"""The ``tau`` values ``fit_label_bias`` tries."""


def fit_label_bias(
    scaled: np.ndarray, labels: np.ndarray, train_counts: np.ndarray
) -> tuple[float, np.ndarray]:
    """Pick how much to discount the labels training saw most (logit adjustment).

    Each label's bias is ``-tau * log`` of its share of the training rows (add-one
    smoothed, centred on 0); ``tau`` is the value in 0, 0.1, ..., 1 with the best
    validation accuracy (the smallest on a tie). 0 keeps the model's own ranking; 1 fully
    undoes the training prior, which suits questions spread evenly over the labels.

    Args:
        scaled: Temperature-scaled validation logits.
        labels: Validation label ids.
        train_counts: Training rows per label, in label order.

    Returns:
        ``(tau, bias)``, the bias in label order.
    """
    import numpy as np

    log_share = np.log((train_counts + 1.0) / (train_counts + 1.0).sum())
    log_share -= log_share.mean()
    accuracy = {
        tau: float(((scaled - tau * log_share).argmax(axis=1) == labels).mean())
        for tau in _PRIOR_STRENGTHS
    }
    tau = max(_PRIOR_STRENGTHS, key=lambda t: (accuracy[t], -t))
    logger.info("label bias: tau %.1f; validation accuracy by tau %s", tau, accuracy)
    return tau, -tau * log_share


def fit_confidence_map(scaled: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Fit the top-label confidence map (``Calibration.confidence_slope``/``_bias``).

    A logistic regression of "the top class is right" on the top class's log-odds against
    the rest (Platt scaling of the confidence): temperature scaling alone keeps one shape
    for every row, and the measured shape was over-sure at the top and under-sure below.

    Args:
        scaled: Validation logits, temperature-scaled and label-biased.
        labels: Validation label ids.

    Returns:
        ``(slope, bias)``; ``(1.0, 0.0)``, the identity, when the rows are all right or all
        wrong, or the fit finds no positive slope.
    """
    from sklearn.linear_model import LogisticRegression

    from langchain_domain_router.classifier import top_log_odds

    top, log_odds, _ = top_log_odds(scaled)
    right = top == labels
    if right.all() or not right.any():
        return 1.0, 0.0
    # C this large leaves the two parameters unpenalised (every sklearn since 1.4).
    fit = LogisticRegression(C=1e6).fit(log_odds[:, None], right)
    slope, bias = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    if slope <= 0:
        logger.warning("confidence map: no positive slope (%.4f); left as the identity", slope)
        return 1.0, 0.0
    return slope, bias


def fit_calibration(
    logits: np.ndarray,
    labels: np.ndarray,
    ood_logits: np.ndarray,
    *,
    label_names: Sequence[str],
    train_counts: np.ndarray | None,
    map_from: int,
    max_length: int,
    model_version: str | None,
) -> Calibration:
    """Fit a checkpoint's whole routing block on validation logits, in this order.

    1. The temperature, on every validation row (NLL).
    2. The label bias (``fit_label_bias``), when the training counts are known.
    3. The confidence map, on the rows from ``map_from`` on: those not held out of KMMLU
       train, whose questions recur across exam years, so a model is surer of them than
       of new questions.
    4. The fallback threshold, on the final confidences.

    Args:
        logits: Validation logits.
        labels: Validation label ids.
        ood_logits: Out-of-domain validation logits (may have no rows: no fallback).
        label_names: The labels, in logit order.
        train_counts: Training rows per label, in label order; None: no label bias.
        map_from: The first validation row the confidence map is fitted on (all rows when
            none is left after it).
        max_length: The token cap the logits were computed with.
        model_version: The version to record.

    Returns:
        The calibration to write into the checkpoint.
    """
    import numpy as np

    from langchain_domain_router.classifier import Scoring

    temperature = fit_temperature(logits, labels)
    label_bias = np.zeros(len(label_names))
    if train_counts is not None:
        _, label_bias = fit_label_bias(logits / temperature, labels, train_counts)
    label_bias = np.round(label_bias, 4)
    start = map_from if map_from < len(labels) else 0
    slope, bias = fit_confidence_map(logits[start:] / temperature + label_bias, labels[start:])
    calibration = Calibration(
        temperature=round(temperature, 4),
        label_bias=dict(zip(label_names, label_bias.tolist(), strict=True))
        if label_bias.any()
        else {},
        confidence_slope=round(slope, 4),
        confidence_bias=round(bias, 4),
        min_margin=0.0,
        max_length=max_length,
        model_version=model_version,
    )
    if not len(ood_logits):
        return calibration.model_copy(update={"min_confidence": 0.0})
    # The threshold is chosen on the scores the saved block gives at run time.
    scoring = Scoring(calibration, list(label_names))
    min_confidence = choose_min_confidence(
        scoring.probabilities(logits).max(axis=1), scoring.probabilities(ood_logits).max(axis=1)
    )
    return calibration.model_copy(update={"min_confidence": round(min_confidence, 4)})

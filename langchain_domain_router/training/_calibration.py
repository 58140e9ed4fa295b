"""Temperature scaling and the fallback threshold, both fitted on validation data only."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


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

"""Metrics on logits: accuracy, macro-F1, top-k, calibration error and OOD AUROC."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def classification_metrics(
    scores: np.ndarray, labels: np.ndarray, num_labels: int
) -> dict[str, Any]:
    """Return accuracy, macro-F1 (over the classes present in ``labels``) and top-3 accuracy.

    ``scores`` are logits or probabilities: whatever ranks the labels as the model does.
    """
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    pred = scores.argmax(1)
    top3 = np.argsort(-scores, axis=1)[:, :3]
    present = np.unique(labels)
    return {
        "n": len(labels),
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, labels=present, average="macro", zero_division=0)),
        "top3_accuracy": float((top3 == labels[:, None]).any(1).mean()),
    }


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> tuple[float, list[dict[str, float]]]:
    """Return the ECE and the per-bin (confidence, accuracy, count) table."""
    import numpy as np

    edges = np.linspace(0.0, 1.0, bins + 1)
    table, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lo) & (confidence <= hi)
        if not in_bin.any():
            continue
        conf, acc = float(confidence[in_bin].mean()), float(correct[in_bin].mean())
        ece += in_bin.mean() * abs(conf - acc)
        table.append(
            {
                "lo": float(lo),
                "hi": float(hi),
                "confidence": conf,
                "accuracy": acc,
                "count": int(in_bin.sum()),
            }
        )
    return float(ece), table


def ood_metrics(
    in_conf: np.ndarray, out_conf: np.ndarray, min_confidence: float
) -> dict[str, float]:
    """Return the AUROC of in- vs out-of-domain confidence and the fallback rates."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(in_conf)), np.zeros(len(out_conf))]
    return {
        "auroc": float(roc_auc_score(y, np.r_[in_conf, out_conf])),
        "ood_fallback_rate": float((out_conf < min_confidence).mean()),
        "in_domain_kept_rate": float((in_conf >= min_confidence).mean()),
    }

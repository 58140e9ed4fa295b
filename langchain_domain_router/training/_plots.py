"""The report's figures (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # reports are written on servers without a display
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix_png(
    labels: np.ndarray, pred: np.ndarray, names: Sequence[str], path: Path
) -> None:
    """Save the row-normalised confusion matrix."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    plt = _pyplot()
    cm = confusion_matrix(labels, pred, labels=np.arange(len(names))).astype(float)
    cm /= np.clip(cm.sum(1, keepdims=True), 1, None)
    fig, ax = plt.subplots(figsize=(14, 12))
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("KMMLU test: confusion matrix (row-normalised)")
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def reliability_png(bins: list[dict[str, float]], ece: float, path: Path) -> None:
    """Save the reliability diagram: accuracy against confidence per bin."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    centres = [(b["lo"] + b["hi"]) / 2 for b in bins]
    ax.bar(
        centres,
        [b["accuracy"] for b in bins],
        width=1 / 15,
        edgecolor="k",
        alpha=0.7,
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], "r--", label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "ko-", ms=3)
    ax.set_xlabel("confidence (softmax(logits / T) top class)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"KMMLU test reliability, ECE = {ece:.4f}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confidence_histogram_png(
    groups: dict[str, np.ndarray], min_confidence: float, path: Path
) -> None:
    """Save overlaid top-class confidence histograms of each in/out-of-domain set."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, conf in groups.items():
        ax.hist(conf, bins=np.linspace(0, 1, 41), density=True, histtype="step", lw=1.5, label=name)
    ax.axvline(min_confidence, color="k", ls="--", label=f"min_confidence {min_confidence:.3f}")
    ax.set_xlabel("top-class confidence")
    ax.set_ylabel("density")
    ax.set_title("Confidence in vs out of domain")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def predicted_histogram_png(pred: np.ndarray, names: Sequence[str], path: Path) -> None:
    """Save the histogram of subjects predicted for OOD questions (the paper's Figure 1)."""
    import numpy as np

    plt = _pyplot()
    counts = np.bincount(pred, minlength=len(names))
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.bar(range(len(names)), counts)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax.set_ylabel("OOD questions")
    ax.set_title("Subject predicted for out-of-domain questions (before the fallback)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

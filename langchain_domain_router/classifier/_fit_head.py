"""A softmax head over frozen features, its cross-validation and its out-of-scope threshold.

The head is multinomial logistic regression (L2-regularised, class-balanced, fitted with
torch's L-BFGS on standardised features) over the own domains plus one out-of-scope class.
The standardisation is folded into the weights, so the head reads the raw pooled features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

FOLDS = 5
"""Cross-validation folds (fewer when a class has fewer rows)."""
L2 = 1e-2
"""The weights' L2 penalty, per standardised feature."""


@dataclass(frozen=True)
class Head:
    """A fitted linear head: ``logits = features @ weight.T + bias``.

    Example:
        ```python
        head = fit_linear_head(features, labels, classes=3)
        probabilities = head.probabilities(features)
        ```
    """

    weight: np.ndarray
    """``(classes, features)``."""
    bias: np.ndarray
    """``(classes,)``."""

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Softmax over the classes, one row per feature row."""
        import numpy as np

        logits = features @ self.weight.T + self.bias
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


def fit_linear_head(
    features: np.ndarray, labels: np.ndarray, classes: int, *, l2: float = L2
) -> Head:
    """Fit the head on ``features`` (rows) and their class ids.

    Args:
        features: ``(rows, dim)`` float features.
        labels: ``(rows,)`` class ids in ``0 .. classes - 1``.
        classes: How many classes (a class may have no rows in a fold).
        l2: The L2 penalty on the standardised weights.

    Returns:
        The head, reading raw features.
    """
    import numpy as np
    import torch

    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-6
    x = torch.from_numpy(((features - mean) / scale).astype(np.float64))
    y = torch.from_numpy(labels.astype(np.int64))
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    balance = np.where(counts > 0, len(labels) / (classes * np.maximum(counts, 1.0)), 0.0)
    weight = torch.zeros(features.shape[1], classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    class_weight = torch.from_numpy(balance)
    optimiser = torch.optim.LBFGS(
        [weight, bias], max_iter=300, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y, weight=class_weight)
        loss = loss + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    w = weight.detach().numpy().T / scale  # (classes, dim), reading raw features
    b = bias.detach().numpy() - w @ mean
    return Head(weight=w.astype(np.float32), bias=b.astype(np.float32))


def folds_of(labels: np.ndarray, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """A stratified, fixed-seed fold id per row."""
    import numpy as np

    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        fold[rng.permutation(rows)] = np.arange(len(rows)) % folds
    return fold


def cross_validate(
    features: np.ndarray, labels: np.ndarray, classes: int, *, folds: int = FOLDS
) -> np.ndarray:
    """Out-of-fold class probabilities: each row scored by a head fitted without its fold.

    Returns:
        ``(rows, classes)`` probabilities.
    """
    import numpy as np

    fold = folds_of(labels, folds)
    probs = np.zeros((len(labels), classes))
    for k in range(folds):
        held = fold == k
        if held.any() and (~held).any():
            probs[held] = fit_linear_head(features[~held], labels[~held], classes).probabilities(
                features[held]
            )
    return probs


def fit_threshold(in_scope: np.ndarray, out_of_scope: np.ndarray) -> tuple[float, float, float]:
    """The top-score threshold that best separates in-scope from out-of-scope questions.

    It maximises the share of in-scope questions kept plus the share of out-of-scope
    ones sent away, taking the middle of the best range.

    Args:
        in_scope: Each in-scope question's top own-domain score (out of fold).
        out_of_scope: Each out-of-scope question's top own-domain score (out of fold).

    Returns:
        ``(threshold, kept, rejected)``: the threshold, the in-scope share it keeps and
        the out-of-scope share it sends to ``general``.
    """
    import numpy as np

    grid = np.linspace(0.0, 1.0, 401)
    kept = (in_scope[None, :] >= grid[:, None]).mean(axis=1)
    rejected = (
        (out_of_scope[None, :] < grid[:, None]).mean(axis=1)
        if len(out_of_scope)
        else np.zeros_like(grid)
    )
    total = kept + rejected
    best = np.flatnonzero(total >= total.max() - 1e-12)
    pick = int(best[len(best) // 2])
    return float(round(grid[pick], 4)), float(kept[pick]), float(rejected[pick])

"""From logits to the probabilities routing reads: a checkpoint's routing block applied.

``probabilities`` is the one scoring rule: the run-time classifier, training's calibration
and evaluation all call it, so reported numbers are the numbers users get.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_domain_router.classifier._settings import Calibration
from langchain_domain_router.taxonomy import Taxonomy

if TYPE_CHECKING:
    import numpy as np


def probabilities(
    logits: Any,
    temperature: float = 1.0,
    problem_type: str | None = None,
    *,
    label_bias: Sequence[float] | np.ndarray | None = None,
    confidence_slope: float = 1.0,
    confidence_bias: float = 0.0,
) -> np.ndarray:
    """Turn logits into probabilities: ``softmax(logits / temperature + label_bias)`` row-wise.

    A confidence map other than slope 1, bias 0 then recalibrates each row's top class
    (Platt scaling of its log-odds against all other classes together): the top class gets
    ``sigmoid(confidence_slope * log_odds + confidence_bias)`` and the others share the
    rest in their softmax proportions. The map never lets another class overtake the top
    one, so the ranking is the softmax's.

    Args:
        logits: A ``(rows, labels)`` array (or tensor).
        temperature: The calibrated temperature.
        problem_type: The model's ``problem_type``; multi-label models get a sigmoid.
        label_bias: Added to each row's scaled logits, in label order
            (``Calibration.bias_vector``); none: no bias.
        confidence_slope: The confidence map's slope (``Calibration.confidence_slope``).
        confidence_bias: The confidence map's bias (``Calibration.confidence_bias``).

    Returns:
        A float64 array of the same shape.
    """
    import numpy as np

    scaled = np.asarray(logits, dtype=np.float64) / temperature
    if label_bias is not None:
        scaled = scaled + np.asarray(label_bias, dtype=np.float64)
    if problem_type == "multi_label_classification":
        return 1.0 / (1.0 + np.exp(-scaled))
    if (confidence_slope, confidence_bias) == (1.0, 0.0) or scaled.shape[-1] < 2:
        exp = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        return exp / exp.sum(axis=-1, keepdims=True)
    rows = scaled.reshape(-1, scaled.shape[-1])
    top, log_odds, rest = top_log_odds(rows)
    # The runner-up's share of the rest: the top class's log-odds stay just above it, so
    # the map never ties or swaps the top two.
    floor = np.log(rest.max(axis=1)) + 1e-9
    mapped = np.maximum(confidence_slope * log_odds + confidence_bias, floor)
    confidence = 1.0 / (1.0 + np.exp(-mapped))
    mapped_probs = rest * (1.0 - confidence)[:, None]
    mapped_probs[np.arange(len(rows)), top] = confidence
    return mapped_probs.reshape(scaled.shape)


def top_log_odds(scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split each row of temperature-scaled logits into its top class and the rest.

    Args:
        scaled: A ``(rows, labels)`` float array, at least two labels.

    Returns:
        ``(top, log_odds, rest)``: the top class's index, its log-odds against all other
        classes together, and the other classes' softmax among themselves (0 at ``top``).
    """
    import numpy as np

    # Plain row indexing: put/take_along_axis cost more than the arithmetic on one row.
    rows = np.arange(len(scaled))
    top = scaled.argmax(axis=1)
    others = scaled.copy()
    others[rows, top] = -np.inf
    peak = others.max(axis=1)
    exp = np.exp(others - peak[:, None])
    total = exp.sum(axis=1)
    log_odds = scaled[rows, top] - peak - np.log(total)
    return top, log_odds, exp / total[:, None]


@dataclass(frozen=True)
class Scoring:
    """A routing block applied to one model's labels: what every prediction needs.

    Example:
        ```python
        scoring = Scoring(Calibration(temperature=2.0, label_bias={"Law": -0.5}), ["Law", "Math"])
        scoring.probabilities([[1.0, 0.0]])
        ```
    """

    calibration: Calibration
    """The routing block."""
    labels: list[str]
    """The labels in ``id2label`` order."""
    problem_type: str | None = None
    """The model's ``problem_type``."""
    taxonomy: Taxonomy | None = None
    """The model's taxonomy (groups, display names); ``None``: read from ``labels``."""
    label_bias: np.ndarray | None = field(init=False)
    """``calibration.label_bias`` in label order (derived, once)."""
    membership: np.ndarray = field(init=False)
    """Which label belongs to which of ``taxonomy.group_names``, a 0/1 (labels x groups)
    matrix: one product per batch then gives every row's group mass (derived, once)."""

    def __post_init__(self) -> None:
        import numpy as np

        bias = self.calibration.bias_vector(self.labels)
        array = None if bias is None else np.asarray(bias, dtype=np.float64)
        object.__setattr__(self, "label_bias", array)
        taxonomy = self.taxonomy or Taxonomy.of({"id2label": dict(enumerate(self.labels))})
        object.__setattr__(self, "taxonomy", taxonomy)
        groups = taxonomy.group_names
        member = [[taxonomy.group_of(label) == g for g in groups] for label in self.labels]
        matrix = np.array(member, dtype=np.float64).reshape(len(self.labels), len(groups))
        object.__setattr__(self, "membership", matrix)

    @property
    def groups(self) -> tuple[str, ...]:
        """The taxonomy's groups, in ``membership``'s column order."""
        return self.taxonomy.group_names if self.taxonomy else ()

    def group_of(self, label: str) -> str | None:
        """The group of ``label`` in the model's taxonomy, or ``None``."""
        return self.taxonomy.group_of(label) if self.taxonomy else None

    def probabilities(self, logits: Any) -> np.ndarray:
        """Apply the rule to a ``(rows, labels)`` batch of logits."""
        calibration = self.calibration
        return probabilities(
            logits,
            calibration.temperature,
            self.problem_type,
            label_bias=self.label_bias,
            confidence_slope=calibration.confidence_slope,
            confidence_bias=calibration.confidence_bias,
        )

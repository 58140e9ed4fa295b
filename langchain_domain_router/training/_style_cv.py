"""Leave-one-style-out: how a head does on a question style none of its rows came in.

Random held-out rows share their style with the training rows; questions written outside
the project do not. Each style of the training rows (KMMLU exam items, the synthetic
conversational, exam, keyword and English questions, ...) is held out in turn: the head is
fitted on every other row and scored on that style. A setting is judged by its *worst*
style, the rule that chooses the default model (``docs/model_selection.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)


def leave_one_style_out(
    features: np.ndarray,
    labels: np.ndarray,
    styles: Sequence[str],
    classes: int,
    penalties: Sequence[float],
) -> dict[float, dict[str, float]]:
    """Accuracy on each held-out style, for each L2 penalty.

    Args:
        features: ``(rows, dim)`` frozen features.
        labels: ``(rows,)`` class ids.
        styles: Each row's style (source).
        classes: How many classes.
        penalties: The L2 penalties compared (``classifier.fit_linear_head``'s ``l2``).

    Returns:
        ``{l2: {style: accuracy}}``; empty when the rows come in fewer than two styles.
    """
    import numpy as np

    from langchain_domain_router.classifier import fit_linear_head

    style = np.asarray(styles)
    kinds = sorted(set(styles))
    if len(kinds) < 2:
        return {}
    results: dict[float, dict[str, float]] = {}
    for l2 in penalties:
        scores = {}
        for kind in kinds:
            held = style == kind
            head = fit_linear_head(features[~held], labels[~held], classes, l2=l2)
            found = head.probabilities(features[held]).argmax(axis=1)
            scores[kind] = round(float((found == labels[held]).mean()), 4)
        results[l2] = scores
        logger.info("l2 %g: worst held-out style %.3f %s", l2, min(scores.values()), scores)
    return results


def best_penalty(results: dict[float, dict[str, float]]) -> float:
    """The penalty whose worst held-out style scores highest (the smaller one on a tie)."""
    return max(sorted(results), key=lambda l2: min(results[l2].values()))

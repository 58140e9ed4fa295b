"""A TF-IDF character n-gram teacher whose soft targets the student learns from.

The teacher's targets for training rows come from cross-fitting (each fold is scored by
a model that never saw it), so that they carry the teacher's real uncertainty instead of
its memorised training labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from sklearn.pipeline import Pipeline


def build_teacher() -> Pipeline:
    """Return the unfitted teacher: TF-IDF char 1-5-grams + class-balanced LinearSVC.

    Wider n-grams than the 2-4 floor scored +0.4 points on KMMLU validation rows and +0.8 on
    synthetic validation rows (1 M features, ~3 min per fit on 2 cores).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    return make_pipeline(
        TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(1, 5),
            sublinear_tf=True,
            min_df=2,
            max_features=1_000_000,
        ),
        LinearSVC(C=0.5, class_weight="balanced", random_state=0),
    )


def teacher_scores(
    texts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    num_labels: int,
    *,
    folds: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Return cross-fitted teacher decision scores for every training row.

    Args:
        texts: The training questions.
        labels: Their label ids.
        num_labels: The number of classes (columns of the result).
        folds: Cross-fitting folds.
        seed: The fold-assignment seed.

    Returns:
        A ``(len(texts), num_labels)`` float32 array of SVM decision scores.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    fold_of = rng.integers(0, folds, size=len(texts))
    y = np.asarray(labels)
    out = np.zeros((len(texts), num_labels), dtype=np.float32)
    text_arr = np.asarray(texts, dtype=object)
    for k in range(folds):
        fit_idx, score_idx = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        teacher = build_teacher().fit(text_arr[fit_idx], y[fit_idx])
        scores = teacher.decision_function(text_arr[score_idx])
        out[np.ix_(score_idx, teacher.classes_)] = scores
        # A class absent from this fold's training part gets a very low score.
        missing = np.setdiff1d(np.arange(num_labels), teacher.classes_)
        out[np.ix_(score_idx, missing)] = -10.0
    return out

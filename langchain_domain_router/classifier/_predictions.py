"""Where models live, and how a batch of probabilities becomes sorted predictions."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_domain_router.schema import DomainPrediction, LabelScore

if TYPE_CHECKING:
    import numpy as np

    from langchain_domain_router.classifier._scoring import Scoring

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def default_model_path() -> Path:
    """Return the directory of the default model embedded in the package."""
    return Path(str(resources.files("langchain_domain_router") / "models" / "default"))


def resolve_model_path(model: str | Path) -> str:
    """The directory or hub id ``model`` names: ``"default"`` is the embedded model."""
    return str(default_model_path()) if str(model) == "default" else str(model)


def check_local_model(path_or_id: str) -> None:
    """Fail early, and clearly, when a local model directory is missing or incomplete.

    Raises:
        ValueError: If a local path does not exist or has no ``config.json``.
    """
    path = Path(path_or_id).expanduser()
    looks_local = path.exists() or path.is_absolute() or path_or_id.startswith((".", "~"))
    if not looks_local and _HUB_ID.match(path_or_id):
        return
    if not path.is_dir():
        msg = f"model directory not found: {path_or_id!r}"
        raise ValueError(msg)
    if not (path / "config.json").is_file():
        msg = f"{path_or_id!r} is not a model directory: it has no config.json"
        raise ValueError(msg)


def to_predictions(
    probs: np.ndarray, scoring: Scoring, *, top_k: int, model_version: str
) -> list[DomainPrediction]:
    """Turn a ``(rows, labels)`` batch of probabilities into sorted predictions.

    Args:
        probs: Probabilities, one row per question.
        scoring: The model's labels (column order), taxonomy and ``problem_type``; with
            independent (sigmoid) scores a group's mass is its best domain's score,
            not the sum.
        top_k: How many labels each prediction lists.
        model_version: Recorded in each prediction.

    Returns:
        One prediction per row.
    """
    import numpy as np

    labels, groups, member = scoring.labels, scoring.groups, scoring.membership
    multi_label = scoring.problem_type == "multi_label_classification"
    k = min(top_k, len(labels))
    top_ids = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    top_scores = probs[np.arange(len(probs))[:, None], top_ids]
    masses = (probs[:, :, None] * member[None]).max(axis=1) if multi_label else probs @ member
    # The values are built here from the model's own labels and float arrays, so the
    # models are constructed without validation: it was half of a large batch's Python time.
    predictions = []
    for mass, scores, ids in zip(
        masses.tolist(), top_scores.tolist(), top_ids.tolist(), strict=True
    ):
        top = [
            LabelScore.model_construct(label=labels[i], score=s)
            for i, s in zip(ids, scores, strict=True)
        ]
        predictions.append(
            DomainPrediction.model_construct(
                label=top[0].label,
                score=top[0].score,
                top_k=top,
                supercategory=scoring.group_of(top[0].label),
                supercategory_scores=dict(zip(groups, mass, strict=True)),
                model_version=model_version,
            )
        )
    return predictions

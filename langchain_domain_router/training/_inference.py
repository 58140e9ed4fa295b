"""Forward passes for training-time evaluation, through the run-time backend.

Scoring goes through ``langchain_domain_router.classifier`` (its ``TorchBackend``,
``backend_logits`` and ``probabilities``), so reported numbers are the numbers users get.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_domain_router.classifier import Calibration
from langchain_domain_router.training._data import DataError

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def batched_logits(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int = 256,
) -> np.ndarray:
    """Return raw logits for ``texts`` through the run-time torch backend.

    The model in memory is wrapped in the ``TorchBackend`` the classifier runs on, so
    tokenising, length-sorted chunking and the forward pass are the run time's own.

    Args:
        model: A sequence classifier (left in the training mode it was in).
        tokenizer: Its fast tokenizer.
        texts: The questions.
        max_length: The token cap.
        batch_size: Rows per forward pass.

    Returns:
        A ``(len(texts), num_labels)`` float32 array.
    """
    from langchain_domain_router.classifier import TorchBackend, backend_logits

    backend = TorchBackend.from_model(model, tokenizer, max_length=max_length)
    return backend_logits(backend, texts, batch_size=batch_size).astype("float32")


def load_model_dir(path: str | Path) -> tuple[Any, Any, Calibration]:
    """Load a saved classifier directory and check its labels.

    Args:
        path: A directory written by ``train``.

    Returns:
        ``(model, tokenizer, calibration)``, the model in fp32 eval mode.

    Raises:
        DataError: When the directory is missing, or its ``id2label`` is absent or not a
            set of KMMLU subjects.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import langchain_domain_router.classifier.modeling  # noqa: F401  (registers the project's model type)
    from langchain_domain_router.taxonomy import KMMLU_DOMAINS

    folder = Path(path)
    if not (folder / "config.json").is_file():
        msg = f"{folder}: not a model directory (no config.json)"
        raise DataError(msg)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype="float32")
    id2label = model.config.id2label or {}
    labels = [id2label[i] for i in sorted(id2label)]
    unknown = [label for label in labels if label not in KMMLU_DOMAINS]
    if not labels or unknown or len(set(labels)) != len(labels):
        msg = (
            f"{folder / 'config.json'}: id2label must name distinct KMMLU subjects; "
            f"got {len(labels)} labels, unknown {unknown[:5]}"
        )
        raise DataError(msg)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model.eval(), tokenizer, Calibration.of(model.config)

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


def check_kmmlu_model(path: str | Path) -> list[str]:
    """The labels of the model directory ``path``, checked to be distinct KMMLU subjects.

    Reads ``config.json`` only, so it checks an ensemble as well as a single model.

    Raises:
        DataError: When the directory is missing, or its ``id2label`` is absent or not a
            set of KMMLU subjects.
    """
    from langchain_domain_router.taxonomy import KMMLU_DOMAINS, Taxonomy

    folder = Path(path)
    if not (folder / "config.json").is_file():
        msg = f"{folder}: not a model directory (no config.json)"
        raise DataError(msg)
    labels = list(Taxonomy.of_model(folder).labels)
    unknown = [label for label in labels if label not in KMMLU_DOMAINS]
    if not labels or unknown or len(set(labels)) != len(labels):
        msg = (
            f"{folder / 'config.json'}: id2label must name distinct KMMLU subjects; "
            f"got {len(labels)} labels, unknown {unknown[:5]}"
        )
        raise DataError(msg)
    return labels


def load_model_dir(path: str | Path) -> tuple[Any, Any, Calibration]:
    """Load a saved classifier directory and check its labels (``check_kmmlu_model``).

    Args:
        path: A directory written by ``train``.

    Returns:
        ``(model, tokenizer, calibration)``, the model in fp32 eval mode.

    Raises:
        DataError: When the directory is missing, or its ``id2label`` is absent or not a
            set of KMMLU subjects.
    """
    from transformers import AutoTokenizer

    import langchain_domain_router.classifier.modeling  # noqa: F401  (registers the project's model type)
    from langchain_domain_router.classifier import load_model

    check_kmmlu_model(path)
    model = load_model(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model.eval(), tokenizer, Calibration.of(model.config)

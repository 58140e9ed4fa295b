"""Batched forward passes with the runtime's preprocessing, for training-time evaluation.

The runtime classifier tokenises with ``truncation=True, max_length=...`` and dynamic
padding, then applies ``softmax(logits / temperature)``; scoring here does the same so that
reported numbers are the numbers users get.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_domain_router.training._data import DataError
from langchain_domain_router.training._model import DOMAIN_ROUTER_KEY

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
    """Return raw logits for ``texts``, one padded forward pass per chunk.

    Texts are sorted by length first so that each chunk pads little; the result is in the
    input order.

    Args:
        model: A sequence classifier.
        tokenizer: Its tokenizer.
        texts: The questions.
        max_length: The token cap.
        batch_size: Rows per forward pass.

    Returns:
        A ``(len(texts), num_labels)`` float32 array.
    """
    import numpy as np
    import torch

    from langchain_domain_router._chars import CHAR_IDS, char_cap, char_ids

    chars = char_cap(model.config)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), len(model.config.id2label or {})), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            ).to(device)
            enc.pop("token_type_ids", None)
            if chars is not None:
                codes = char_ids([texts[i] for i in idx], chars)
                enc[CHAR_IDS] = torch.from_numpy(codes).to(device)
            out[idx] = model(**enc).logits.float().cpu().numpy()
    model.train(was_training)
    return out


def load_model_dir(path: str | Path) -> tuple[Any, Any, dict[str, Any]]:
    """Load a saved classifier directory and check its labels.

    Args:
        path: A directory written by ``train``.

    Returns:
        ``(model, tokenizer, router_settings)``, the model in fp32 eval mode.

    Raises:
        DataError: When the directory is missing, or its ``id2label`` is absent or not a
            set of KMMLU subjects.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import langchain_domain_router.modeling  # noqa: F401  (registers the project's model type)
    from langchain_domain_router._taxonomy import KMMLU_DOMAINS

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
    settings = dict(getattr(model.config, DOMAIN_ROUTER_KEY, None) or {})
    return model.eval(), tokenizer, settings

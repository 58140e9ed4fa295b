"""``fit-head``: a domain head over a frozen pretrained encoder.

The encoder (multilingual-e5-small's first layers, from ``convert-e5``) is left as it was
pretrained; only a linear head over its mean-pooled states is fitted, by class-balanced
logistic regression on the standardised features (``classifier.fit_linear_head``, the
fitter ``fit-domains`` uses too). The standardisation is folded into the head's weights,
so the saved checkpoint is an ordinary ``domain-router-encoder`` whose ``classifier``
layer reads the pooled states directly, and its ONNX graph is the encoder plus one
matrix. Frozen features keep what the encoder learnt from web-scale text, which transfers
to question styles the training rows lack better than a network that learnt exam
phrasing; KMMLU's exam-heavy subjects are capped so that they do not set the head's
prior.

Features are cached per chunk under ``output_dir/features``: an interrupted run resumes
from the last finished chunk.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_domain_router.training._data import DataError, Example
from langchain_domain_router.training._splits import DataSources, load_bundle
from langchain_domain_router.training._style_cv import best_penalty, leave_one_style_out

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

_CHUNK = 2048
"""Rows embedded and cached together."""


@dataclass
class HeadFitOptions:
    """What ``fit_head`` builds.

    Example:
        ```python
        HeadFitOptions(base="runs/e5-6", output_dir="runs/r14")
        ```
    """

    base: str
    """A ``convert-e5`` checkpoint (any mean-pooled ``domain-router-encoder``)."""
    output_dir: str
    """Run folder: ``features/`` (the cache) and ``model/``."""
    kmmlu_cap: int = 350
    """Most KMMLU rows of one subject used (a fixed-seed draw); 0: all of them."""
    l2: float = 1e-5
    """The L2 penalty on the standardised weights (``classifier.fit_linear_head``); per
    row, so a head over thousands of rows wants far less than the few-example own-domain
    heads' default."""
    max_length: int = 128
    """Token cap, in fitting and at inference."""
    batch_size: int = 64
    """Rows per forward pass while embedding."""
    seed: int = 0
    """The seed of the splits and of the KMMLU draw."""
    threads: int = 2
    """CPU threads for torch."""
    device: str = "auto"
    """Where the encoder runs while embedding: ``auto`` (CUDA where there is one), ``cpu``
    or ``cuda``."""
    model_version: str = "kmmlu-e5-head"
    """Stored in the saved model's routing block."""
    style_cv: tuple[float, ...] = ()
    """L2 penalties to compare by leave-one-style-out (each training style held out in turn);
    the one with the best worst style replaces ``l2``. Empty: ``l2`` as given."""


def cap_per_label(rows: Sequence[Example], cap: int, *, seed: int = 0) -> list[Example]:
    """Keep at most ``cap`` KMMLU rows per label (a fixed-seed draw) and every other row.

    Args:
        rows: Training rows.
        cap: Most KMMLU rows per label; 0 keeps all.
        seed: The draw's seed.

    Returns:
        The kept rows, in their original order.
    """
    if cap <= 0:
        return list(rows)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        if row.is_kmmlu:
            by_label[row.label].append(i)
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw, not security
    dropped: set[int] = set()
    for label in sorted(by_label):
        indices = by_label[label]
        rng.shuffle(indices)
        dropped.update(indices[cap:])
    return [row for i, row in enumerate(rows) if i not in dropped]


def pooled_features(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int = 64,
    cache: Path | None = None,
) -> np.ndarray:
    """Return the encoder's mean-pooled states for ``texts``, cached per chunk.

    The encoder runs through the run time's ``TorchBackend`` (its tokenising, length-sorted
    chunking and ``features`` pass), so the features are exactly what the saved head reads.

    Args:
        model: A mean-pooled ``domain-router-encoder``.
        tokenizer: Its fast tokenizer.
        texts: The questions.
        max_length: The token cap.
        batch_size: Rows per forward pass.
        cache: A folder for finished chunks (named by a hash of the base, the cap and their
            texts); ``None`` caches nothing.

    Returns:
        A ``(len(texts), hidden_size)`` float32 array.
    """
    import numpy as np

    from langchain_domain_router.classifier import (
        ClassifierOptions,
        TorchBackend,
        backend_features,
    )

    backend = TorchBackend.from_model(model, tokenizer, max_length=max_length)
    width = int(model.config.hidden_size)
    max_chars = ClassifierOptions().max_chars  # what the run time keeps of a question
    parts = []
    for start in range(0, len(texts), _CHUNK):
        chunk = list(texts[start : start + _CHUNK])
        # The encoder and the token cap are part of the key: a rerun with another base or
        # cap in the same run folder embeds again instead of reading stale features.
        source = [str(model.name_or_path), str(max_length), *chunk]
        key = hashlib.sha256("\n".join(source).encode()).hexdigest()[:16]
        path = cache / f"{key}.npy" if cache else None
        if path and path.is_file():
            parts.append(np.load(path))
            continue
        part = backend_features(backend, chunk, batch_size=batch_size, max_chars=max_chars)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, part.astype("float32"))
        parts.append(part.astype("float32"))
        logger.info("embedded %d of %d rows", start + len(chunk), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, width), "float32")


def fit_head(sources: DataSources, options: HeadFitOptions) -> Path:
    """Fit, calibrate and save a head over a frozen encoder.

    Args:
        sources: Where the data lives (the splits every command shares).
        options: The base, the data cap and the fit's settings.

    Returns:
        The saved model directory (``output_dir/model``).

    Raises:
        DataError: When there is no training or validation data, or the base is not a
            mean-pooled encoder.

    Example:
        ```python
        from langchain_domain_router.training import DataSources, HeadFitOptions, fit_head

        fit_head(
            DataSources.shared("../shared/data"),
            HeadFitOptions(base="runs/e5-6", output_dir="runs/r14"),
        )
        ```
    """
    import numpy as np
    import torch

    from langchain_domain_router.classifier import fit_linear_head
    from langchain_domain_router.training._model import load_base_model, training_device
    from langchain_domain_router.training._recalibrate import calibrate_and_save
    from langchain_domain_router.training._train import subject_labels

    started = time.time()
    torch.set_num_threads(options.threads)
    bundle = load_bundle(sources, seed=options.seed, with_test=False)
    if not bundle.train or not bundle.validation:
        msg = "no training or validation rows: give --shared, --kmmlu, --synthetic or --data"
        raise DataError(msg)
    from transformers import AutoTokenizer

    labels = subject_labels()
    model: Any = load_base_model(options.base, labels)
    model.to(training_device(options.device)).eval()
    if getattr(model.config, "base_classifier", None) or not hasattr(model, "encoder"):
        msg = f"{options.base} is not a mean-pooled encoder: give a convert-e5 checkpoint"
        raise DataError(msg)
    tokenizer = AutoTokenizer.from_pretrained(options.base)
    rows = cap_per_label(bundle.train, options.kmmlu_cap, seed=options.seed)
    label2id = {label: i for i, label in enumerate(labels)}
    y = np.array([label2id[r.label] for r in rows])
    features = pooled_features(
        model,
        tokenizer,
        [r.text for r in rows],
        max_length=options.max_length,
        batch_size=options.batch_size,
        cache=Path(options.output_dir) / "features",
    )
    styles = [_style(row) for row in rows]
    by_style = leave_one_style_out(features, y, styles, len(labels), options.style_cv)
    l2 = best_penalty(by_style) if by_style else options.l2
    head = fit_linear_head(features, y, len(labels), l2=l2)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(head.weight))
        model.classifier.bias.copy_(torch.from_numpy(head.bias))
    wall = time.time() - started
    logger.info("head fitted on %d rows in %.0fs", len(y), wall)
    return calibrate_and_save(
        model.to("cpu"),
        tokenizer,
        bundle,
        options.max_length,
        Path(options.output_dir) / "model",
        model_version=options.model_version,
        extra={
            "head_fit": {
                **asdict(options),
                "rows": len(y),
                "rows_per_source": _per_source(rows),
                "l2_used": l2,
                "leave_one_style_out": {str(k): v for k, v in by_style.items()},
                "wall_seconds": round(wall),
            }
        },
    )


def _style(row: Example) -> str:
    return row.style or "unstyled"


def _per_source(rows: Sequence[Example]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[_style(row)] += 1
    return dict(sorted(counts.items()))

"""``fit-ngrams``: give a trained classifier a fitted character n-gram branch.

A linear SVM over hashed character 1-5-grams (TF-IDF weights, L2-normalised bags: the
teacher's recipe, with the hash the model computes in its graph), optionally with the
tokens' n-grams as a second bag in the same table, is fitted on the training rows. Its
decision function becomes the n-gram branch of a ``domain-router-encoder`` whose encoder
is the given model, unchanged; the branch's weight in the sum is the one with the lowest
validation NLL. The result is calibrated and saved like ``train``'s output, so one
checkpoint (and one ONNX graph) carries both signals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_domain_router.training._data import DataError
from langchain_domain_router.training._splits import DataSources, load_bundle

if TYPE_CHECKING:
    import numpy as np
    from scipy import sparse

    from langchain_domain_router.classifier import TorchBackend

logger = logging.getLogger(__name__)

_INHERITED = (
    "vocab_size",
    "max_position_embeddings",
    "pad_token_id",
    "num_labels",
    "id2label",
    "label2id",
    "problem_type",
)
"""Config fields the saved model takes from the classifier it is built on."""

_WEIGHTS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0, 24.0)
"""Branch weights tried on the validation rows (the SVM's scores are about +-1)."""


def choose_weight(
    base_logits: np.ndarray, svm_scores: np.ndarray, labels: np.ndarray
) -> tuple[float, dict[float, float]]:
    """Return the branch weight whose sum has the lowest validation NLL, and every NLL.

    Each sum gets its own fitted temperature first, as the saved model will. NLL rewards
    the sum's probabilities, which routing thresholds read, and does not hinge on a few
    rows the way accuracy does.

    Args:
        base_logits: The encoder's validation logits.
        svm_scores: The n-gram SVM's validation decision scores.
        labels: The validation label ids.

    Returns:
        ``(weight, {weight: NLL})``.
    """
    from langchain_domain_router.training._calibration import fit_temperature, nll

    losses = {}
    for weight in _WEIGHTS:
        logits = base_logits + weight * svm_scores
        losses[weight] = round(nll(logits, labels, fit_temperature(logits, labels)), 5)
    return min(losses, key=lambda w: losses[w]), losses


@dataclass
class NgramFitOptions:
    """What ``fit_ngram_branch`` builds.

    Example:
        ```python
        NgramFitOptions(model="runs/r4/model", output_dir="runs/r4-ngrams")
        ```
    """

    model: str
    """The trained classifier directory (any sequence classifier with a fast tokenizer)."""
    output_dir: str
    """Run folder; the model is saved to ``output_dir/model``."""
    buckets: int = 1 << 18
    """Rows of the hashed n-gram table."""
    dim: int = 0
    """Width of the table: 0 keeps the SVM exactly (one column per label); fewer columns
    keep its best low-rank approximation (a smaller model)."""
    orders: tuple[int, ...] = (1, 2, 3, 4, 5)
    """Character n-gram lengths."""
    token_orders: tuple[int, ...] = ()
    """Token n-gram lengths hashed into the same table as a second bag (the tokenizer's
    ids, as the model reads them); empty: characters only."""
    max_chars: int = 512
    """Characters of a question the branch reads."""
    c: float = 0.5
    """The SVM's regularisation (``LinearSVC(C=...)``, class-balanced)."""
    seed: int = 0
    """The split seed the model was trained with."""
    model_version: str | None = None
    """Stored in the saved model; default: the base model's version with ``+ngrams``."""


def source_counts(
    texts: Sequence[str], backend: TorchBackend, *, batch_size: int = 512
) -> list[sparse.csr_matrix]:
    """Count each text's hashed n-grams per source, exactly as the model's graph does.

    The texts are encoded by the run time's tokenizer and hashed by the model's own
    ``ngram_grams``, so the counts are the graph's.

    Args:
        texts: The questions.
        backend: A ``domain-router-encoder`` (its branch's sources, orders and buckets)
            with its run-time tokenizer.
        batch_size: Texts hashed per call.

    Returns:
        One ``(len(texts), buckets)`` sparse matrix of counts per source (characters,
        then tokens); bucket 0, padding, stays empty.
    """
    import numpy as np
    import torch
    from scipy import sparse

    from langchain_domain_router.classifier import CHAR_IDS

    model: Any = backend.model  # a domain-router-encoder: it has ngram_grams
    tokenizer = backend.tokenizer
    buckets = model.config.ngram_buckets
    blocks: list[list[sparse.csr_matrix]] = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer.encode(list(texts[start : start + batch_size]))
        ids = encoded["input_ids"]
        inputs = {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(encoded.get("attention_mask", np.ones_like(ids))),
        }
        if CHAR_IDS in encoded:
            inputs[CHAR_IDS] = torch.from_numpy(encoded[CHAR_IDS])
        with torch.no_grad():
            sources = [grams.numpy() for grams in model.ngram_grams(**inputs)]
        blocks.append([])
        for grams in sources:
            rows, cols = np.nonzero(grams)
            values = np.ones(len(rows), dtype=np.float32)
            shape = (len(grams), buckets)
            blocks[-1].append(sparse.csr_matrix((values, (rows, grams[rows, cols])), shape=shape))
    if not blocks:
        return [sparse.csr_matrix((0, buckets))]
    return [sparse.vstack(parts).tocsr() for parts in zip(*blocks, strict=True)]


def bag_features(counts: Sequence[sparse.csr_matrix], idf: np.ndarray) -> sparse.csr_matrix:
    """The branch's view of a question: the sources' TF-IDF bags, added.

    Each source's bag is ``count * idf`` divided by ``sqrt(count . idf^2)``.
    """
    import numpy as np
    from scipy import sparse

    bags = []
    for source in counts:
        norms = np.sqrt(np.asarray(source @ (idf**2)).ravel())
        scale = sparse.diags(1.0 / np.maximum(norms, 1e-6))
        bags.append(scale @ source @ sparse.diags(idf))
    return sum(bags[1:], bags[0]).tocsr()


def _table(weights: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(embedding rows, classifier matrix)`` whose product is ``weights``.

    ``weights`` is ``(buckets, labels)``; ``dim`` 0 (or >= labels) keeps it exactly,
    fewer columns keep its truncated SVD.
    """
    import numpy as np

    labels = weights.shape[1]
    if not dim or dim >= labels:
        return weights, np.eye(labels, dtype=np.float32)
    u, s, vt = np.linalg.svd(weights, full_matrices=False)
    return (u[:, :dim] * s[:dim]).astype(np.float32), vt[:dim].T.astype(np.float32)


def _composite(base: Any, options: NgramFitOptions) -> Any:
    """The ``domain-router-encoder`` around ``base``, its n-gram branch still empty."""
    from langchain_domain_router.classifier import CHAR_IDS
    from langchain_domain_router.classifier.modeling import (
        DomainEncoderConfig,
        DomainEncoderForSequenceClassification,
    )

    # What the runtime reads from the top-level config (labels, token cap, padding) is
    # the base model's.
    inherited = {name: getattr(base.config, name) for name in _INHERITED}
    labels = int(base.config.num_labels)
    config = DomainEncoderConfig(
        base_classifier=base.config.to_dict(),
        ngram_buckets=options.buckets,
        ngram_dim=options.dim if 0 < options.dim < labels else labels,
        ngram_orders=options.orders,
        ngram_input=CHAR_IDS,
        ngram_max_chars=options.max_chars,
        ngram_token_orders=options.token_orders,
        **inherited,
    )
    model = DomainEncoderForSequenceClassification(config)
    model.base.load_state_dict(base.state_dict())
    return model.eval()


def _fill(
    model: Any, embedding: np.ndarray, head: np.ndarray, bias: np.ndarray, idf: np.ndarray
) -> None:
    """Write the fitted table, output layer and IDFs into ``model``'s n-gram branch."""
    import torch

    with torch.no_grad():
        model.ngram_embeddings.weight.copy_(torch.from_numpy(embedding))
        model.ngram_embeddings.weight[0].zero_()
        model.ngram_classifier.weight.copy_(torch.from_numpy(head))
        model.ngram_classifier.bias.copy_(torch.from_numpy(bias))
        model.ngram_idf.copy_(torch.from_numpy(idf))


def fit_ngram_branch(sources: DataSources, options: NgramFitOptions) -> Path:
    """Fit the n-gram SVM, join it to ``options.model`` and save the result.

    Args:
        sources: Where the data lives (the same sources the model was trained on).
        options: The branch's shape and the SVM's settings.

    Returns:
        The saved model directory (``output_dir/model``), calibrated like ``train``'s.

    Raises:
        DataError: When there is no training or validation data.

    Example:
        ```python
        from langchain_domain_router.training import DataSources, NgramFitOptions
        from langchain_domain_router.training import fit_ngram_branch

        fit_ngram_branch(
            DataSources.shared("../shared/data"),
            NgramFitOptions(model="runs/r4/model", output_dir="runs/r4-ngrams"),
        )
        ```
    """
    import numpy as np
    from sklearn.svm import LinearSVC

    from langchain_domain_router.classifier import TorchBackend
    from langchain_domain_router.training._inference import batched_logits, load_model_dir
    from langchain_domain_router.training._recalibrate import calibrate_and_save

    started = time.time()
    base, tokenizer, settings = load_model_dir(options.model)
    bundle = load_bundle(sources, seed=options.seed, with_test=False)
    if not bundle.train or not bundle.validation:
        msg = "no training or validation rows: give --shared, --kmmlu, --synthetic or --data"
        raise DataError(msg)
    label2id = base.config.label2id
    y = np.array([label2id[r.label] for r in bundle.train])
    model = _composite(base, options)
    hashing = TorchBackend.from_model(model, tokenizer, max_length=settings.max_length)
    counts = source_counts([r.text for r in bundle.train], hashing)
    documents = np.bincount(sum(counts[1:], counts[0]).indices, minlength=options.buckets)
    idf = (np.log((1 + len(y)) / (1 + documents)) + 1).astype(np.float32)  # sklearn's smooth idf
    svm = LinearSVC(C=options.c, class_weight="balanced", random_state=options.seed)
    svm.fit(bag_features(counts, idf), y)
    logger.info("n-gram SVM fitted on %d rows in %.0fs", len(y), time.time() - started)
    # A label absent from the training rows keeps a very low score, as in the teacher.
    coef = np.zeros((len(label2id), options.buckets), dtype=np.float32)
    intercept = np.full(len(label2id), -10.0, dtype=np.float32)
    coef[svm.classes_], intercept[svm.classes_] = svm.coef_, svm.intercept_

    texts = [r.text for r in bundle.validation]
    y_val = np.array([label2id[r.label] for r in bundle.validation])
    max_length = settings.max_length
    base_logits = batched_logits(base, tokenizer, texts, max_length=max_length)
    svm_scores = bag_features(source_counts(texts, hashing), idf) @ coef.T + intercept
    weight, calibrated = choose_weight(base_logits, svm_scores, y_val)
    logger.info("validation NLL by branch weight (temperature fitted): %s", calibrated)

    embedding, head = _table((weight * coef).T, options.dim)
    _fill(model, embedding, head, weight * intercept, idf)
    version = options.model_version or f"{settings.model_version or 'model'}+ngrams"
    report = {
        "ngram_fit": {
            **asdict(options),
            "branch_weight": weight,
            "validation_nll_by_weight": calibrated,
            "validation_accuracy": {
                "base": float((base_logits.argmax(1) == y_val).mean()),
                "ngrams": float((svm_scores.argmax(1) == y_val).mean()),
                "sum": float(((base_logits + weight * svm_scores).argmax(1) == y_val).mean()),
            },
            "wall_seconds": round(time.time() - started),
        }
    }
    return calibrate_and_save(
        model,
        tokenizer,
        bundle,
        max_length,
        Path(options.output_dir) / "model",
        model_version=version,
        extra=report,
    )

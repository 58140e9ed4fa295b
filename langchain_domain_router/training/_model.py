"""Build the ELECTRA classifier: from scratch (the default) or from a pretrained checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_domain_router.training._data import DataError

if TYPE_CHECKING:
    from transformers import ElectraForSequenceClassification, PreTrainedModel


@dataclass(frozen=True)
class ModelSize:
    """The shape of a from-scratch ELECTRA discriminator.

    Example:
        ```python
        ModelSize(layers=2, hidden=128)
        ```
    """

    layers: int = 2
    """Transformer layers."""
    hidden: int = 256
    """Hidden size."""
    heads: int = 4
    """Attention heads."""
    embedding: int = 128
    """Factorised embedding size (ELECTRA-small uses 128)."""
    intermediate: int = 512
    """Feed-forward size."""


def label_maps(labels: Sequence[str]) -> tuple[dict[int, str], dict[str, int]]:
    """Return ``(id2label, label2id)`` for ``labels`` in the given order."""
    return dict(enumerate(labels)), {label: i for i, label in enumerate(labels)}


def build_scratch_model(
    labels: Sequence[str], vocab_size: int, size: ModelSize, max_length: int, *, seed: int = 0
) -> ElectraForSequenceClassification:
    """Return a randomly initialised ELECTRA sequence classifier.

    Args:
        labels: The subject names, in ``id2label`` order.
        vocab_size: The tokenizer's vocabulary size.
        size: The network shape.
        max_length: The token cap (position embeddings are sized to it).
        seed: The initialisation seed.

    Returns:
        The model, in training mode.
    """
    import torch
    from transformers import ElectraConfig, ElectraForSequenceClassification

    id2label, label2id = label_maps(labels)
    config = ElectraConfig(  # type: ignore[call-arg]  # PretrainedConfig takes **kwargs
        vocab_size=vocab_size,
        embedding_size=size.embedding,
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        intermediate_size=size.intermediate,
        max_position_embeddings=max_length,
        num_labels=len(labels),
        id2label=id2label,
        label2id=label2id,
        problem_type="single_label_classification",
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    return ElectraForSequenceClassification(config)


def training_device(name: str) -> str:
    """Return the torch device a run uses: ``auto`` picks CUDA where there is one.

    Args:
        name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Returns:
        The device name.

    Raises:
        DataError: When CUDA is asked for and torch sees no GPU.
    """
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        msg = f"--device {name}: torch sees no CUDA device (a CPU-only torch, or no GPU)"
        raise DataError(msg)
    return name


def load_base_model(base: str, labels: Sequence[str]) -> PreTrainedModel:
    """Load a pretrained ELECTRA (hub name or local folder) with a fresh 45-way head.

    Args:
        base: E.g. ``monologg/koelectra-base-v3-discriminator`` or a local folder.
        labels: The subject names, in ``id2label`` order.

    Returns:
        The model, ready to fine-tune.
    """
    from transformers import AutoModelForSequenceClassification

    import langchain_domain_router.classifier.modeling  # noqa: F401  (registers the project's model type)

    id2label, label2id = label_maps(labels)
    return AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=id2label,
        label2id=label2id,
        problem_type="single_label_classification",
        ignore_mismatched_sizes=True,
    )


def warm_start(
    model: ElectraForSequenceClassification,
    sequences: Sequence[Sequence[int]],
    labels: Sequence[int],
    *,
    shrink: float = 5.0,
) -> None:
    """Give a from-scratch model a bag-of-words starting point, in place.

    A randomly initialised transformer whose only summary is the ``[CLS]`` position sits on
    a long plateau, predicting the class prior, before its embeddings become informative;
    on two CPU cores that plateau eats most of the budget. Two changes skip it:

    * the first ``num_labels`` dimensions of each token embedding are set to the token's
      smoothed pointwise mutual information with each subject in the training rows (shrunk
      towards zero for rare tokens), so tokens start where a linear model would put them;
    * attention queries start at zero, so every head first averages its inputs uniformly
      (``[CLS]`` sees the mean of the question's tokens) and learns to focus from there;
      keys stay random, which keeps the queries' gradient non-zero.

    Args:
        model: The freshly built classifier.
        sequences: Token ids of the training rows.
        labels: Their label ids.
        shrink: Pseudo-count of the rare-token shrinkage.
    """
    import numpy as np
    import torch

    embeddings = model.electra.embeddings.word_embeddings.weight
    vocab, width = embeddings.shape
    k = len(model.config.id2label or {})
    counts = np.zeros((vocab, k), dtype=np.float64)
    for seq, label in zip(sequences, labels, strict=True):
        counts[np.unique(np.asarray(seq)), label] += 1
    per_token = counts.sum(1, keepdims=True)
    prior = counts.sum(0) / max(counts.sum(), 1.0)
    pmi = np.log((counts + 0.1) / (per_token + 0.1 * k)) - np.log(np.clip(prior, 1e-9, None))
    pmi *= per_token / (per_token + shrink)
    pmi /= max(pmi.std(), 1e-6)
    dims = min(k, width)
    with torch.no_grad():
        embeddings[:, :dims] = torch.from_numpy(pmi[:, :dims]).to(embeddings.dtype)
        for layer in model.electra.encoder.layer:
            layer.attention.self.query.weight.zero_()
            layer.attention.self.query.bias.zero_()

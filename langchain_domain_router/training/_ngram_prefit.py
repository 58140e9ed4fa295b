"""Pre-fit the n-gram branch alone, fastText style, before the joint loop."""

from __future__ import annotations

import logging
import random
from typing import Any

from langchain_domain_router.training._finetune import (
    EncodedPool,
    LoopOptions,
    class_weights,
    length_sorted_batches,
    padded,
)

logger = logging.getLogger(__name__)


def prefit_ngrams(
    model: Any, pool: EncodedPool, options: LoopOptions, batch_size: int = 256
) -> None:
    """Train only the n-gram table and its output layer on the labelled rows, in place.

    Every labelled row is used each epoch (non-KMMLU rows ``synthetic_repeat`` times),
    batches are cut from length-sorted chunks, and the loss is the class-weighted
    cross-entropy of the joint loop. Does nothing for a model without the branch or when
    ``options.ngram_prefit_epochs`` is 0.

    Args:
        model: A ``DomainEncoderForSequenceClassification``.
        pool: The encoded training rows.
        options: Loop knobs (``ngram_prefit_epochs``, ``ngram_prefit_learning_rate``).
        batch_size: Rows per step.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    if not options.ngram_prefit_epochs or not getattr(model.config, "ngram_buckets", 0):
        return
    params = [*model.ngram_embeddings.parameters(), *model.ngram_classifier.parameters()]
    optimizer = torch.optim.Adam(params, lr=options.ngram_prefit_learning_rate)
    weights = class_weights(pool, options, model.config.num_labels)
    rows = [i for i, k in enumerate(pool.is_kmmlu) if k]
    rows += [i for i, k in enumerate(pool.is_kmmlu) if not k] * options.synthetic_repeat
    rng = random.Random(options.seed)  # noqa: S311 - reproducible shuffling
    was_training = model.training
    model.train()
    for epoch in range(options.ngram_prefit_epochs):
        rng.shuffle(rows)
        batches = length_sorted_batches(rows, lambda i: len(pool.question_ids[i]), batch_size)
        rng.shuffle(batches)
        total = 0.0
        for batch in batches:
            ids, mask = padded([pool.question_ids[i] for i in batch], pool.pad_id)
            labels = torch.tensor([pool.labels[i] for i in batch])
            loss = F.cross_entropy(model.ngram_logits(ids, mask), labels, weight=weights)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            total += loss.item()
        logger.info("n-gram pre-fit epoch %d: loss %.4f", epoch + 1, total / len(batches))
    model.train(was_training)

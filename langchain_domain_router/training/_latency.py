"""Inference speed through the runtime classifier: one question at a time, and batched."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path


def measure_latency(
    model_dir: str | Path, texts: Sequence[str], *, batch_size: int = 32
) -> dict[str, float]:
    """Return single-question p50/p95 latency (ms) and batched throughput (questions/s).

    Both go through ``DomainClassifier.classify_texts`` (tokenising, forward pass,
    temperature softmax, top-k), so they are what a caller of the router pays.

    Args:
        model_dir: The model directory.
        texts: Sample questions (the first 200 are timed one by one).
        batch_size: The classifier's ``batch_size`` in the batched measurement.

    Returns:
        ``single_p50_ms``, ``single_p95_ms``, ``batched_questions_per_s``.
    """
    import numpy as np

    from langchain_domain_router.classifier import DomainClassifier

    classifier = DomainClassifier.from_pretrained(model_dir, batch_size=batch_size).load()
    for text in texts[:20]:
        classifier.classify_texts([text])  # warm-up: first calls allocate and pick kernels
    timings = []
    for text in texts[:200]:
        started = time.perf_counter()
        classifier.classify_texts([text])
        timings.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    classifier.classify_texts(list(texts))
    rate = len(texts) / (time.perf_counter() - started)
    return {
        "single_p50_ms": float(np.percentile(timings, 50)),
        "single_p95_ms": float(np.percentile(timings, 95)),
        "batched_questions_per_s": float(rate),
    }

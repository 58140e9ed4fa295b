"""Inference speed as the runtime sees it: one question at a time, and batched."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any


def measure_latency(
    model: Any, tokenizer: Any, texts: Sequence[str], *, max_length: int, batch_size: int = 32
) -> dict[str, float]:
    """Return single-question p50/p95 latency (ms) and batched throughput (questions/s).

    Both include tokenisation, as the runtime classifier does.

    Args:
        model: The classifier (eval mode, CPU).
        tokenizer: Its tokenizer.
        texts: Sample questions (the first 200 are timed one by one).
        max_length: The token cap.
        batch_size: Questions per forward pass in the batched measurement.

    Returns:
        ``single_p50_ms``, ``single_p95_ms``, ``batched_questions_per_s``.
    """
    import numpy as np
    import torch

    from langchain_domain_router.training._inference import batched_logits

    def forward(batch: Sequence[str]) -> None:
        enc = tokenizer(
            list(batch), truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        )
        enc.pop("token_type_ids", None)
        model(**enc)

    model.eval()
    timings = []
    with torch.inference_mode():
        for text in texts[:20]:
            forward([text])  # warm-up: first calls allocate and pick kernels
        for text in texts[:200]:
            started = time.perf_counter()
            forward([text])
            timings.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    batched_logits(model, tokenizer, texts, max_length=max_length, batch_size=batch_size)
    rate = len(texts) / (time.perf_counter() - started)
    return {
        "single_p50_ms": float(np.percentile(timings, 50)),
        "single_p95_ms": float(np.percentile(timings, 95)),
        "batched_questions_per_s": float(rate),
    }

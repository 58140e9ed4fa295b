"""Length-sorted chunks of a large call, run one after another or side by side."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

T = TypeVar("T")


def by_length_chunks(
    texts: Sequence[str], size: int, run: Callable[[list[str]], Sequence[T]], *, workers: int = 1
) -> list[T]:
    """Apply ``run`` to chunks of ``size`` texts, shortest first; return results in order.

    Sorting by length means each chunk pads to about its own length, not to the longest
    question of the whole batch.

    Args:
        texts: The inputs.
        size: The most texts one ``run`` call takes.
        run: Maps a chunk of texts to one result per text.
        workers: Chunks run side by side (``forward_slots.passes``): one chunk's forward
            pass overlaps the next one's tokenisation and pass on another core.

    Returns:
        One result per text, in the order of ``texts``.
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    chunks = [order[start : start + size] for start in range(0, len(order), size)]
    results: list[T | None] = [None] * len(texts)

    def one(chunk: list[int]) -> Sequence[T]:
        return run([texts[i] for i in chunk])

    parallel = workers > 1 and len(chunks) > 1
    outputs = _chunk_threads(workers).map(one, chunks) if parallel else map(one, chunks)
    for chunk, output in zip(chunks, outputs, strict=True):
        for index, result in zip(chunk, output, strict=True):
            results[index] = result
    return cast("list[T]", results)


@functools.cache
def _chunk_threads(workers: int) -> ThreadPoolExecutor:
    """The pool that runs a large call's chunks side by side (made on first use)."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="domain-router-chunks")

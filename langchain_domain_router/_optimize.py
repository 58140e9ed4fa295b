"""Optional inference speed-ups applied to a loaded model."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar, cast

if TYPE_CHECKING:
    from transformers import PreTrainedModel

T = TypeVar("T")

Quantization = Literal["int8"]
"""``"int8"``: dynamic int8 quantisation of every ``nn.Linear`` (CPU only)."""


def quantize(model: PreTrainedModel, scheme: Quantization, device: str) -> PreTrainedModel:
    """Return ``model`` quantised with ``scheme``.

    Dynamic quantisation stores ``nn.Linear`` weights as int8 and quantises activations
    on the fly; the embeddings and layer norms stay float. It runs on CPU only.

    Args:
        model: A loaded model in eval mode.
        scheme: The quantisation scheme.
        device: The device the classifier runs on.

    Returns:
        The quantised model.

    Raises:
        ValueError: If ``device`` is not the CPU.
    """
    import torch
    from torch.ao.quantization import quantize_dynamic

    if torch.device(device).type != "cpu":
        msg = f"quantize={scheme!r} runs on the CPU only, not on device={device!r}"
        raise ValueError(msg)
    with warnings.catch_warnings():
        # torch deprecates the quantised tensor API in favour of torchao, which is not
        # a dependency; the kernels still ship and are what this measures.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def by_length_chunks(
    texts: Sequence[str], size: int, run: Callable[[list[str]], Sequence[T]]
) -> list[T]:
    """Apply ``run`` to chunks of ``size`` texts, shortest first; return results in order.

    Sorting by length means each chunk pads to about its own length, not to the longest
    question of the whole batch.

    Args:
        texts: The inputs.
        size: The most texts one ``run`` call takes.
        run: Maps a chunk of texts to one result per text.

    Returns:
        One result per text, in the order of ``texts``.
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results: list[T | None] = [None] * len(texts)
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        for index, result in zip(chunk, run([texts[i] for i in chunk]), strict=True):
            results[index] = result
    return cast("list[T]", results)

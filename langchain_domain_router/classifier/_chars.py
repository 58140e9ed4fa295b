"""The ``char_ids`` model input: a question's lower-cased Unicode code points.

A model whose n-gram branch reads characters (``DomainEncoderConfig.ngram_input ==
"char_ids"``) takes this array beside the tokenizer's ``input_ids``; both backends and the
training code build it here, with numpy only, so that the runtime needs no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import numpy as np

CHAR_IDS: Final = "char_ids"
"""The input's name in the model's ``forward`` and in its ONNX graph."""


def char_ids(texts: Sequence[str], max_chars: int) -> np.ndarray:
    """Return the lower-cased code points of ``texts``, 0-padded to the longest.

    Args:
        texts: The questions.
        max_chars: Characters kept per question (the model's ``ngram_max_chars``).

    Returns:
        A ``(len(texts), longest)`` int64 array (at least one column); 0 is padding.

    Example:
        ```python
        char_ids(["AB", "c"], 512).tolist()  # [[97, 98], [99, 0]]
        ```
    """
    import numpy as np

    rows = [
        np.frombuffer(text[:max_chars].lower()[:max_chars].encode("utf-32-le"), dtype=np.uint32)
        for text in texts
    ]
    out = np.zeros((len(rows), max((len(r) for r in rows), default=1) or 1), dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def char_cap(config: Any) -> int | None:
    """Characters per question a model reads as ``char_ids``, or ``None`` if it reads none.

    Args:
        config: The model's config (a ``transformers`` config or any object with the same
            attributes).
    """
    if getattr(config, "ngram_input", None) != CHAR_IDS:
        return None
    return int(getattr(config, "ngram_max_chars", 512))

"""A small thread-safe LRU cache of predictions, keyed on the text the model really sees."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, cast

V = TypeVar("V")

# Pre-tokenizers that split on any run of whitespace: for them, collapsing whitespace
# cannot change the tokens, so "a  b" and "a b" may share a cache entry.
_WHITESPACE_SPLITTERS = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}


def text_normaliser(tokenizer: Any) -> Callable[[str], str]:
    """Return a function mapping a text to its cache key for ``tokenizer``.

    The key is the tokenizer's own normalisation of the text (e.g. NFKC, lower-casing),
    with whitespace runs collapsed only when the pre-tokenizer splits on whitespace
    anyway: two texts share a key only when the model sees the same tokens.

    Args:
        tokenizer: A ``transformers`` tokenizer; a fast one exposes its normaliser.

    Returns:
        The key function.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    normalizer = getattr(backend, "normalizer", None)
    collapse = type(getattr(backend, "pre_tokenizer", None)).__name__ in _WHITESPACE_SPLITTERS

    def key(text: str) -> str:
        if normalizer is not None:
            text = normalizer.normalize_str(text)
        return " ".join(text.split()) if collapse else text

    return key


class LRUCache(Generic[V]):
    """A least-recently-used cache, safe to share between threads.

    Example:
        ```python
        cache: LRUCache[int] = LRUCache(2)
        cache.put("a", 1)
        cache.get("a")  # 1
        ```
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._items: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> V | None:
        """Return the value for ``key`` (marking it recently used), or ``None``."""
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: V) -> None:
        """Store ``value``, evicting the least recently used entry when full."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)

    def get_or_compute(
        self,
        keys: Sequence[str],
        inputs: Sequence[str],
        compute: Callable[[list[str]], Sequence[V]],
    ) -> list[V]:
        """Return the cached value of each key, computing the missing ones in one call.

        Args:
            keys: One cache key per input.
            inputs: What ``compute`` takes for each key.
            compute: Maps the inputs whose keys are missing to their values.

        Returns:
            One value per key, in order.
        """
        found = [self.get(key) for key in keys]
        missing = [i for i, value in enumerate(found) if value is None]
        for i, value in zip(missing, compute([inputs[i] for i in missing]), strict=True):
            self.put(keys[i], value)
            found[i] = value
        return cast("list[V]", found)

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

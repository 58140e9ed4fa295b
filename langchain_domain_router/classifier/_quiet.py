"""A quiet terminal: no progress bars or error-looking lines in normal operation.

Loading the embedded model takes well under a second, yet ``transformers`` draws a
``Loading weights`` progress bar and may log notes about the checkpoint; in a terminal
or a notebook that reads like something went wrong. Long work the user asked for
(training, evaluation, benchmarks) keeps its own progress bars: only the loading is hushed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PACKAGE_LOGGER = "langchain_domain_router"
"""The package's top logger: at ``DEBUG`` (``domain-router -v``) loading is not hushed."""

_lock = threading.Lock()
_depth = 0
_saved: tuple[bool, int] | None = None


def _hush() -> None:
    global _depth, _saved
    from transformers.utils import logging as hf_logging

    with _lock:
        if _depth == 0:
            _saved = (hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity())
            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
        _depth += 1


def _restore() -> None:
    global _depth, _saved
    from transformers.utils import logging as hf_logging

    with _lock:
        _depth -= 1
        if _depth == 0 and _saved is not None:
            bars, verbosity = _saved
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
            _saved = None


@contextmanager
def quiet_model_loading() -> Iterator[None]:
    """Hide ``transformers`` progress bars and its info/warning logs inside the block.

    The previous settings come back when the last of any concurrent blocks ends. When the
    package logger is enabled for ``DEBUG`` (``domain-router -v``), nothing is hidden.

    Example:
        ```python
        from transformers import AutoModelForSequenceClassification

        with quiet_model_loading():
            model = AutoModelForSequenceClassification.from_pretrained(path)
        ```
    """
    if logging.getLogger(PACKAGE_LOGGER).isEnabledFor(logging.DEBUG):
        yield
        return
    _hush()
    try:
        yield
    finally:
        _restore()

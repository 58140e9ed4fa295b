"""A quiet terminal: no progress bars or error-looking lines in normal operation.

Loading the embedded model takes well under a second, yet ``transformers`` draws a
``Loading weights`` progress bar and may log notes about the checkpoint; in a terminal
or a notebook that reads like something went wrong. Long work the user asked for
(training, evaluation, benchmarks) keeps its own progress bars: only the loading is hushed.
Experts without a reachable model get one plain notice that says how to set a key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
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


def _key_hint(model: str) -> str:
    provider = model.split(":", 1)[0] if ":" in model else ""
    if provider == "openai":
        return "OPENAI_API_KEY (and OPENAI_BASE_URL for any OpenAI-compatible server)"
    return f"{provider.upper()}_API_KEY" if provider else "the provider's API key"


def offline_notice(unreachable: Sequence[tuple[str, str]]) -> str | None:
    """Say in one line which experts the offline expert stands in for, and how to change it.

    Args:
        unreachable: ``(node, model)`` for each expert model that could not be built.
            Models configured as ``"offline"`` on purpose need no notice.

    Returns:
        The notice, or ``None`` when every offline expert was asked for.

    Example:
        ```python
        offline_notice([("law", "openai:gpt-4o"), ("general", "openai:gpt-4o-mini")])
        # 'no chat model available for law, general: the offline expert answers with the
        #  routing decision; set OPENAI_API_KEY (...) for real answers'
        ```
    """
    from langchain_domain_router.experts import OFFLINE_MODEL

    missing = [(node, model) for node, model in unreachable if model != OFFLINE_MODEL]
    if not missing:
        return None
    nodes = ", ".join(dict.fromkeys(node for node, _ in missing))
    hints = " or ".join(dict.fromkeys(_key_hint(model) for _, model in missing))
    return (
        f"no chat model available for {nodes}: the offline expert answers with the routing "
        f"decision; set {hints} for real answers"
    )

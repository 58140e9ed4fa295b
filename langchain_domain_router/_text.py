"""The one rule every entry point applies to question text (no heavy imports here)."""

from __future__ import annotations


def require_text(text: str) -> str:
    """Return ``text`` stripped of surrounding whitespace, or fail when nothing is left.

    Args:
        text: A question.

    Returns:
        The stripped text.

    Raises:
        ValueError: If the text is empty or only whitespace.

    Example:
        ```python
        require_text("  민법상 채권자대위권의 요건은? ")  # '민법상 채권자대위권의 요건은?'
        ```
    """
    stripped = text.strip()
    if not stripped:
        msg = "the question is empty: there is no text to classify"
        raise ValueError(msg)
    return stripped

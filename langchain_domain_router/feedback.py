"""The misroute feedback loop: remember recent routes, store corrections for retraining."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_domain_router.taxonomy import Taxonomy


class FeedbackStore:
    """Remembers recent routing decisions and stores corrections as JSON lines.

    Each stored line is ``{"text", "label", "predicted", "misroute", "request_id",
    "timestamp"}``: a ``text,label`` JSONL file that ``domain-router train --feedback``
    (KMMLU models) or ``domain-router fit-domains --feedback`` (own domains) folds into
    the next fit. Question texts are held in memory only for the
    last ``capacity`` requests, and written to disk only when feedback is recorded.

    Example:
        ```python
        store = FeedbackStore("feedback.jsonl")
        store.remember("req-1", "그럼 그건 어떻게 계산해?", "Accounting")
        store.record("req-1", "Taxation")  # a misroute, appended to feedback.jsonl
        ```
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        capacity: int = 10_000,
        taxonomy: Taxonomy | None = None,
    ) -> None:
        """Create a store writing to ``path`` (in memory only when ``None``).

        ``taxonomy`` is the classifier model's, which corrections must name (``None``:
        the default model's, KMMLU).
        """
        self.path = Path(path) if path is not None else None
        self.taxonomy = taxonomy or Taxonomy.kmmlu()
        self.capacity = capacity
        self.records: list[dict[str, Any]] = []
        self._recent: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, request_id: str, question: str, predicted: str) -> None:
        """Keep a routed question so that feedback on it can be recorded later."""
        with self._lock:
            self._recent[request_id] = (question, predicted)
            self._recent.move_to_end(request_id)
            while len(self._recent) > self.capacity:
                self._recent.popitem(last=False)

    def record(
        self, request_id: str, correct_domain: str, *, question: str | None = None
    ) -> dict[str, Any]:
        """Store the correct domain of a routed question.

        Args:
            request_id: The ``request_id`` of the routing record.
            correct_domain: The domain the question belongs to (one of the model's).
            question: The question text, needed only when the request is no longer
                remembered (e.g. it was served by another process).

        Returns:
            The stored record.

        Raises:
            ValueError: If the domain is unknown, or the request is not remembered and
                no ``question`` is given.
        """
        self.taxonomy.check_domain(correct_domain)
        with self._lock:
            remembered = self._recent.get(request_id)
        if remembered is None and question is None:
            msg = (
                f"unknown request_id {request_id!r}: it was not routed by this router "
                f"recently (the last {self.capacity} are kept); pass question=... instead"
            )
            raise ValueError(msg)
        text, predicted = remembered or (str(question), "")
        record = {
            "text": question or text,
            "label": correct_domain,
            "predicted": predicted or None,
            "misroute": predicted != correct_domain,
            "request_id": request_id,
            "timestamp": datetime.now(UTC).isoformat(),
        }
        with self._lock:
            self.records.append(record)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as sink:
                    sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        return record

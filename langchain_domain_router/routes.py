"""A routes file: a user's own domains, each defined by a handful of example questions.

``domain-router fit-domains ROUTES.yaml`` (``DomainClassifier.fit_domains``) fits a
classifier on it. The file is YAML, TOML or JSON::

    domains:
      - name: finance                 # label; experts list it under `domains`
        description: 개인 재무, 투자, 대출, 보험   # optional
        group: money                  # optional: hierarchical fallback group
        examples: ["적금이랑 예금 중에 뭐가 나아요?", ...]   # at least 5 questions
    out_of_scope: ["안녕 반가워", ...]   # optional: questions that belong to no domain
    keep_kmmlu: false                   # true: the 45 KMMLU subjects stay, these are added
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from langchain_domain_router.settings_files import read_settings_file

MIN_EXAMPLES = 5
"""Examples each domain needs."""
MAX_ROUTES_BYTES = 2_000_000
"""The largest routes (or feedback) file read: a few examples per domain fit in far less."""
MAX_TEXT_CHARS = 2000
"""The longest example question kept."""


def _clean(texts: Iterable[str], where: str) -> list[str]:
    """Strip each text; refuse empty ones; drop exact repeats."""
    kept: list[str] = []
    for i, text in enumerate(texts):
        stripped = text.strip()
        if not stripped:
            msg = f"{where}[{i}] is an empty string"
            raise ValueError(msg)
        if len(stripped) > MAX_TEXT_CHARS:
            msg = f"{where}[{i}] has {len(stripped)} characters; the limit is {MAX_TEXT_CHARS}"
            raise ValueError(msg)
        if stripped not in kept:
            kept.append(stripped)
    return kept


class Route(BaseModel):
    """One own domain: its label, an optional description and group, and its examples.

    Example:
        ```python
        from langchain_domain_router import Route

        Route(
            name="travel",
            group="leisure",
            examples=["제주도 2박 3일 코스 짜줘", "오사카 항공권 언제 사야 싸요?", ...],
        )
        ```
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")
    """The label: experts list it under ``domains``."""
    description: str | None = None
    """What the domain covers (shown as its display name in routing explanations)."""
    group: str | None = Field(default=None, min_length=1, max_length=64)
    """A hierarchical fallback group: an expert that names it under ``supercategories``
    answers the group's uncertain questions."""
    examples: list[str] = Field(min_length=MIN_EXAMPLES)
    """Example questions (at least five; twenty serve well)."""

    @field_validator("examples")
    @classmethod
    def _examples(cls, examples: list[str]) -> list[str]:
        kept = _clean(examples, "examples")
        if len(kept) < MIN_EXAMPLES:
            msg = f"needs at least {MIN_EXAMPLES} different examples, got {len(kept)}"
            raise ValueError(msg)
        return kept


class RoutesFile(BaseModel):
    """The own domains to fit, the questions that belong to none, and the base taxonomy.

    Example:
        ```python
        from langchain_domain_router import RoutesFile

        routes = RoutesFile.load("routes.yaml")
        [route.name for route in routes.domains]
        ```
    """

    model_config = ConfigDict(extra="forbid")

    domains: list[Route] = Field(min_length=1)
    """The own domains."""
    out_of_scope: list[str] = Field(default_factory=list)
    """Questions that belong to no domain: with the package's off-topic questions they
    fit the threshold below which a question goes to ``general``."""
    keep_kmmlu: bool = False
    """Keep the base model's 45 KMMLU subjects and add these domains to them."""

    @field_validator("out_of_scope")
    @classmethod
    def _out_of_scope(cls, texts: list[str]) -> list[str]:
        return _clean(texts, "out_of_scope")

    @model_validator(mode="after")
    def _distinct_names(self) -> Self:
        names = [route.name for route in self.domains]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            msg = f"domains: duplicate names {duplicates}"
            raise ValueError(msg)
        return self

    @property
    def names(self) -> list[str]:
        """The domains' names, in file order."""
        return [route.name for route in self.domains]

    @classmethod
    def load(cls, routes: RoutesSource) -> RoutesFile:
        """Turn a path, a mapping, a list of ``Route`` objects (or dicts) into routes.

        Args:
            routes: A YAML/TOML/JSON file, the mapping such a file holds, a list of
                routes, or a ``RoutesFile``.

        Returns:
            The validated routes.

        Raises:
            ValueError: If the file is missing, too large or not valid (the error names
                the offending field, e.g. ``domains.1.examples``).
        """
        if isinstance(routes, RoutesFile):
            return routes
        if isinstance(routes, str | Path):
            return cls.model_validate(read_settings_file(_small_file(routes)))
        if isinstance(routes, Mapping):
            return cls.model_validate(dict(routes))
        return cls(domains=[Route.model_validate(route) for route in routes])

    def with_feedback(self, rows: Sequence[Mapping[str, Any]], source: str = "feedback") -> Self:
        """Add corrected questions (``record_feedback`` rows) to their domains' examples.

        Args:
            rows: ``{"text", "label"}`` rows; a label must be one of the domains.
            source: Where the rows came from, for error messages.

        Returns:
            A copy with the questions added (repeats dropped).

        Raises:
            ValueError: For a row without text or with an unknown label.
        """
        added: dict[str, list[str]] = {name: [] for name in self.names}
        for i, row in enumerate(rows, 1):
            text, label = str(row.get("text") or "").strip(), str(row.get("label") or "")
            if not text:
                msg = f"{source}: row {i} has no text"
                raise ValueError(msg)
            if label not in added:
                close = difflib.get_close_matches(label, self.names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                msg = f"{source}: row {i} has label {label!r}, not one of {self.names}{hint}"
                raise ValueError(msg)
            added[label].append(text)
        domains = [
            route.model_copy(update={"examples": _clean([*route.examples, *added[route.name]], "")})
            for route in self.domains
        ]
        return self.model_copy(update={"domains": domains})


RoutesSource = RoutesFile | str | Path | Mapping[str, Any] | Sequence[Route | Mapping[str, Any]]
"""What ``fit_domains`` accepts as routes."""


def _small_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_file() and path.stat().st_size > MAX_ROUTES_BYTES:
        size = path.stat().st_size / 1e6
        msg = (
            f"{str(path)!r} is {size:.1f} MB; a routes file may hold at most "
            f"{MAX_ROUTES_BYTES / 1e6:.0f} MB (a few dozen examples per domain are enough)"
        )
        raise ValueError(msg)
    if not path.is_file():
        msg = f"routes file not found: {str(path)!r}"
        raise ValueError(msg)
    return path


def read_feedback(path: str | Path) -> list[dict[str, Any]]:
    """Read the JSONL rows ``record_feedback`` wrote (``{"text", "label", ...}``).

    Raises:
        ValueError: If the file is missing, too large or holds a line that is not a
            JSON object.
    """
    file = _small_file(path)
    rows = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            msg = f"{file}:{number}: not JSON ({exc})"
            raise ValueError(msg) from exc
        if not isinstance(row, dict):
            msg = f"{file}:{number}: expected a JSON object with text and label"
            raise ValueError(msg)
        rows.append(row)
    return rows

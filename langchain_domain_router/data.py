"""Labelled questions: KMMLU splits and ``text,label`` files, loaded with clear errors.

Every loader returns :class:`Example` rows; a file that is missing, unreadable or holds a
label outside the KMMLU taxonomy raises :class:`DataError` naming the file. The router
(``measure_quality``, the int8 export check), training and the benchmarks all read
their data through this module.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langchain_domain_router.taxonomy import Taxonomy

__all__ = [
    "KMMLU_SPLITS",
    "OPTION_COLUMNS",
    "DataError",
    "Example",
    "check_label",
    "load_kmmlu",
    "load_labelled_file",
    "load_labelled_folder",
    "require_rows",
]

KMMLU_SPLITS = ("train", "dev", "test")
# Upstream KMMLU spells two file names in lower case; the subject comes from the file name.
_FILE_SUBJECTS = {"korean-history": "Korean-History", "math": "Math"}
OPTION_COLUMNS = ("A", "B", "C", "D")


class DataError(ValueError):
    """A data file is missing, corrupt, empty or holds a label outside the taxonomy."""


@dataclass(frozen=True)
class Example:
    """One labelled question.

    Example:
        ```python
        Example(text="감가상각이 뭐야?", label="Accounting", style="conversational")
        ```
    """

    text: str
    """The question text, exactly what the model sees at inference."""
    label: str
    """A KMMLU subject name, or ``""`` for out-of-domain text."""
    style: str = "kmmlu"
    """Where the question's phrasing comes from (``kmmlu``, ``conversational``, ``exam``...)."""
    options: tuple[str, ...] = field(default=())
    """Answer options: extra training text only, never an input at inference."""
    answer: int | None = None
    """The correct option (1-4) for KMMLU rows: used to measure expert models' quality."""

    @property
    def is_kmmlu(self) -> bool:
        """Whether the row is a real KMMLU question (not synthetic, team-written or feedback)."""
        return self.style == "kmmlu"


def check_label(label: str, source: str | Path, taxonomy: Taxonomy | None = None) -> str:
    """Return ``label`` when the taxonomy has it, else raise naming ``source``.

    Args:
        label: The label to check.
        source: The file (or dataset) the label came from, for the error message.
        taxonomy: The model's taxonomy; ``None``: the default model's (KMMLU), which
            training trains.

    Returns:
        The label unchanged.

    Raises:
        DataError: When the taxonomy lacks the label (with a "did you mean").
    """
    try:
        return (taxonomy or Taxonomy.kmmlu()).check_domain(label, "label")
    except ValueError as exc:
        msg = f"{source}: {exc}"
        raise DataError(msg) from None


def _subject_of(path: Path, split: str) -> str:
    stem = path.name[: -len(f"-{split}.csv")]
    return check_label(_FILE_SUBJECTS.get(stem, stem), path)


def _read_csv_rows(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                msg = f"{path}: missing column(s) {missing}; header is {reader.fieldnames}"
                raise DataError(msg)
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        msg = f"{path}: cannot read CSV ({err})"
        raise DataError(msg) from err


def load_kmmlu(folder: str | Path, split: str) -> list[Example]:
    """Load one KMMLU split from a folder of upstream ``{Subject}-{split}.csv`` files.

    Columns are mapped by header name (``math-test.csv`` swaps the last two upstream).

    Args:
        folder: The folder holding the KMMLU CSVs.
        split: ``train``, ``dev`` or ``test``.

    Returns:
        The questions with their subject and answer options.

    Raises:
        DataError: When the folder or split has no files, or a file is corrupt.
    """
    if split not in KMMLU_SPLITS:
        msg = f"unknown KMMLU split {split!r}; expected one of {KMMLU_SPLITS}"
        raise DataError(msg)
    root = Path(folder)
    files = sorted(root.glob(f"*-{split}.csv"))
    if not files:
        msg = f"{root}: no KMMLU '*-{split}.csv' files found"
        raise DataError(msg)
    rows: list[Example] = []
    for path in files:
        label = _subject_of(path, split)
        for row in _read_csv_rows(path, ("question", *OPTION_COLUMNS)):
            options = tuple(row[c] for c in OPTION_COLUMNS if row.get(c))
            answer = (row.get("answer") or "").strip()
            rows.append(
                Example(
                    row["question"],
                    label,
                    "kmmlu",
                    options,
                    int(answer) if answer in {"1", "2", "3", "4"} else None,
                )
            )
    return require_rows(rows, root / f"*-{split}.csv")


def load_labelled_file(path: str | Path) -> list[Example]:
    """Load a CSV or JSONL file of ``text,label`` rows (an optional ``style`` is kept).

    Args:
        path: A ``.csv`` with a header, or a ``.jsonl`` with one object per line.

    Returns:
        The questions.

    Raises:
        DataError: When the file is missing, corrupt, empty or has an unknown label.
    """
    file = Path(path)
    if not file.is_file():
        msg = f"{file}: file not found"
        raise DataError(msg)
    if file.suffix == ".csv":
        records: Iterable[dict[str, str]] = _read_csv_rows(file, ("text", "label"))
    else:
        records = _read_jsonl(file)
    rows = [
        Example(r["text"], check_label(r["label"], file), r.get("style") or "other")
        for r in records
    ]
    return require_rows(rows, file)


def _read_jsonl(file: Path) -> list[dict[str, str]]:
    out = []
    try:
        with file.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if not isinstance(record, dict) or "text" not in record or "label" not in record:
                    msg = f"{file}:{lineno}: expected an object with 'text' and 'label'"
                    raise DataError(msg)
                out.append(record)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"{file}: cannot read JSONL ({err})"
        raise DataError(msg) from err
    return out


def load_labelled_folder(folder: str | Path) -> list[Example]:
    """Load every ``*.jsonl`` and ``*.csv`` of ``text,label`` rows under ``folder``.

    Args:
        folder: A folder such as ``../shared/data/synthetic``.

    Returns:
        All rows, files in sorted order.

    Raises:
        DataError: When the folder holds no such file.
    """
    root = Path(folder)
    files = sorted([*root.glob("*.jsonl"), *root.glob("*.csv")])
    if not files:
        msg = f"{root}: no .jsonl or .csv files of text,label rows found"
        raise DataError(msg)
    return [row for f in files for row in load_labelled_file(f)]


def require_rows(rows: list[Example], source: str | Path) -> list[Example]:
    """Return ``rows``, or raise ``DataError`` naming ``source`` when there are none."""
    if not rows:
        msg = f"{source}: the split is empty"
        raise DataError(msg)
    return rows

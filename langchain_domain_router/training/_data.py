"""Labelled and unlabelled text for training and evaluation, loaded with clear errors.

Every loader returns :class:`Example` rows; a file that is missing, unreadable or holds a
label outside the KMMLU taxonomy raises :class:`DataError` naming the file.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langchain_domain_router._taxonomy import KMMLU_DOMAINS

KMMLU_SPLITS = ("train", "dev", "test")
# Upstream KMMLU spells two file names in lower case; the subject comes from the file name.
_FILE_SUBJECTS = {"korean-history": "Korean-History", "math": "Math"}
_OPTION_COLUMNS = ("A", "B", "C", "D")


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


def check_label(label: str, source: str | Path) -> str:
    """Return ``label`` when it is a KMMLU subject, else raise naming ``source``.

    Args:
        label: The label to check.
        source: The file (or dataset) the label came from, for the error message.

    Returns:
        The label unchanged.

    Raises:
        DataError: When the label is not one of the 45 KMMLU subjects.
    """
    if label not in KMMLU_DOMAINS:
        msg = f"{source}: label {label!r} is not a KMMLU subject (see KMMLU_DOMAINS)"
        raise DataError(msg)
    return label


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
        for row in _read_csv_rows(path, ("question", *_OPTION_COLUMNS)):
            options = tuple(row[c] for c in _OPTION_COLUMNS if row.get(c))
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
    return _non_empty(rows, root / f"*-{split}.csv")


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
    return _non_empty(rows, file)


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


def load_hub_dataset(name: str, split: str) -> list[Example]:
    """Load a Hugging Face ``datasets`` dataset (network needed), e.g. ``HAERAE-HUB/KMMLU``.

    KMMLU is read per subject config; other datasets must have ``text`` and ``label``.

    Args:
        name: The dataset name on the hub.
        split: The split to load.

    Returns:
        The questions.

    Raises:
        ImportError: When ``datasets`` is not installed.
    """
    try:
        import datasets
    except ImportError as err:
        msg = "loading a hub dataset needs `pip install datasets`"
        raise ImportError(msg) from err
    if name == "HAERAE-HUB/KMMLU":
        rows = []
        for subject in KMMLU_DOMAINS:
            for r in datasets.load_dataset(name, subject, split=split):
                options = tuple(str(r[c]) for c in _OPTION_COLUMNS)
                rows.append(Example(r["question"], subject, "kmmlu", options))
        return _non_empty(rows, f"{name}[{split}]")
    data = datasets.load_dataset(name, split=split)
    return _non_empty([Example(r["text"], check_label(r["label"], name)) for r in data], name)


def _non_empty(rows: list[Example], source: str | Path) -> list[Example]:
    if not rows:
        msg = f"{source}: the split is empty"
        raise DataError(msg)
    return rows


def stratified_split(
    rows: Sequence[Example], fractions: Sequence[float], *, seed: int = 0
) -> list[list[Example]]:
    """Split rows fixed-seed into parts, stratified by (label, style).

    Args:
        rows: The rows to split.
        fractions: The share of each part except the last, which takes the rest.
        seed: The shuffle seed.

    Returns:
        ``len(fractions) + 1`` lists of rows.
    """
    groups: dict[tuple[str, str], list[Example]] = defaultdict(list)
    for row in rows:
        groups[(row.label, row.style)].append(row)
    parts: list[list[Example]] = [[] for _ in range(len(fractions) + 1)]
    rng = random.Random(seed)  # noqa: S311 - reproducible splits, not security
    for key in sorted(groups):
        group = groups[key]
        rng.shuffle(group)
        start = 0
        for i, frac in enumerate(fractions):
            end = start + round(frac * len(group))
            parts[i].extend(group[start:end])
            start = end
        parts[-1].extend(group[start:])
    return parts


def load_ood_questions(folder: str | Path) -> dict[str, list[str]]:
    """Load out-of-domain questions and sentences from the ``korean_text`` folder.

    Args:
        folder: ``../shared/data/korean_text``.

    Returns:
        ``{"question-pair": [...], "korquad": [...], "sentences": [...]}``, each
        de-duplicated in file order; ``sentences`` holds KorNLI, KorSTS and PAWS-X text.

    Raises:
        DataError: When a file is missing or corrupt.
    """
    root = Path(folder)
    pairs = [
        q
        for name in ("train", "dev", "test")
        for q in _tsv_columns(root / "question-pair" / f"{name}.tsv", ("question1", "question2"))
    ]
    sentences = [
        s
        for path in sorted(
            [*root.glob("kornli/*.tsv"), *root.glob("korsts/*.tsv"), *root.glob("paws/*.tsv")]
        )
        for s in _tsv_columns(path, ("sentence1", "sentence2"))
    ]
    return {
        "question-pair": _dedupe(pairs),
        "korquad": _dedupe(_korquad_questions(root / "korquad" / "KorQuAD_v1.0_dev.json")),
        "sentences": _dedupe(sentences),
    }


def _tsv_columns(path: Path, columns: Sequence[str]) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                msg = f"{path}: missing column(s) {missing}"
                raise DataError(msg)
            return [row[c].strip() for row in reader for c in columns if (row[c] or "").strip()]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        msg = f"{path}: cannot read TSV ({err})"
        raise DataError(msg) from err


def _korquad_questions(path: Path) -> list[str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return [
            qa["question"].strip()
            for article in doc["data"]
            for paragraph in article["paragraphs"]
            for qa in paragraph["qas"]
        ]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        msg = f"{path}: cannot read KorQuAD questions ({err})"
        raise DataError(msg) from err


def _dedupe(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(t for t in texts if t))

"""Training data beyond the core loaders: hub datasets, splits and out-of-domain text.

The labelled-question loaders (KMMLU, ``text,label`` files) live in
``langchain_domain_router.data``; they are imported here for the training modules.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from langchain_domain_router.data import (
    OPTION_COLUMNS,
    DataError,
    Example,
    check_label,
    load_kmmlu,
    load_labelled_file,
    load_labelled_folder,
    require_rows,
)
from langchain_domain_router.taxonomy import KMMLU_DOMAINS

__all__ = [
    "DataError",
    "Example",
    "check_label",
    "load_hub_dataset",
    "load_kmmlu",
    "load_labelled_file",
    "load_labelled_folder",
    "load_ood_questions",
    "stratified_split",
]


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
                options = tuple(str(r[c]) for c in OPTION_COLUMNS)
                rows.append(Example(r["question"], subject, "kmmlu", options))
        return require_rows(rows, f"{name}[{split}]")
    data = datasets.load_dataset(name, split=split)
    return require_rows([Example(r["text"], check_label(r["label"], name)) for r in data], name)


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

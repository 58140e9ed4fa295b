"""The fixed-seed splits every command shares: train, validation, test and OOD sets.

* KMMLU: ``train`` minus a stratified hold-out (validation, with ``dev``); ``test`` is
  only ever scored.
* Synthetic: split 70 / 15 / 15 by (subject, style) into train / validation / test.
* Out-of-domain: question-pair and KorQuAD questions are cut in file order (so paraphrase
  pairs and questions about one paragraph stay together) into 40 % outlier-exposure
  training, 20 % threshold selection and 40 % reporting; KorNLI/KorSTS/PAWS-X sentences
  are used for outlier exposure only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from langchain_domain_router.training._data import (
    Example,
    load_hub_dataset,
    load_kmmlu,
    load_labelled_file,
    load_labelled_folder,
    load_ood_questions,
    stratified_split,
)

SYNTHETIC_FRACTIONS = (0.70, 0.15)
OOD_FRACTIONS = (0.40, 0.20)
KMMLU_HOLDOUT = 0.015


@dataclass
class DataSources:
    """Where the data lives; any source may be left out.

    Example:
        ```python
        DataSources(kmmlu="../shared/data/kmmlu", synthetic="../shared/data/synthetic")
        ```
    """

    kmmlu: str | None = None
    """A folder of upstream KMMLU CSVs."""
    synthetic: str | None = None
    """A folder of ``text,label`` JSONL/CSV files to split into train/validation/test."""
    korean_text: str | None = None
    """The ``korean_text`` folder (out-of-domain text)."""
    extra: list[str] = field(default_factory=list)
    """More ``text,label`` CSV/JSONL files or folders of them, used for training only."""
    dataset: str | None = None
    """A hub dataset name (e.g. ``HAERAE-HUB/KMMLU``), read instead of ``kmmlu``."""

    @classmethod
    def shared(cls, root: str | Path = "../shared/data") -> DataSources:
        """Return the layout of the project's ``../shared/data`` folder."""
        base = Path(root)
        return cls(
            kmmlu=str(base / "kmmlu"),
            synthetic=str(base / "synthetic"),
            korean_text=str(base / "korean_text"),
        )


@dataclass
class DataBundle:
    """Every split, as lists of :class:`Example` (OOD rows have label ``""``)."""

    train: list[Example] = field(default_factory=list)
    validation: list[Example] = field(default_factory=list)
    holdout_rows: int = 0
    """How many leading ``validation`` rows were held out of KMMLU train (then come KMMLU
    dev and the synthetic validation split)."""
    kmmlu_test: list[Example] = field(default_factory=list)
    synthetic_test: list[Example] = field(default_factory=list)
    ood_train: list[str] = field(default_factory=list)
    ood_validation: list[str] = field(default_factory=list)
    ood_test: dict[str, list[str]] = field(default_factory=dict)


def _kmmlu_split(sources: DataSources, split: str) -> list[Example]:
    if sources.dataset:
        return load_hub_dataset(sources.dataset, split)
    if sources.kmmlu:
        return load_kmmlu(sources.kmmlu, split)
    return []


def _cut(items: list[str], fractions: tuple[float, float]) -> tuple[list[str], ...]:
    a = round(fractions[0] * len(items))
    b = a + round(fractions[1] * len(items))
    return items[:a], items[a:b], items[b:]


def load_bundle(
    sources: DataSources, *, seed: int = 0, with_train: bool = True, with_test: bool = True
) -> DataBundle:
    """Load and split every source.

    Args:
        sources: Where the data lives.
        seed: The seed of every split.
        with_train: Load the training and validation sets.
        with_test: Load the test sets (KMMLU test, synthetic test, OOD test).

    Returns:
        The splits.
    """
    bundle = DataBundle()
    if with_train:
        kmmlu_train = _kmmlu_split(sources, "train")
        if kmmlu_train:
            kept, held = stratified_split(kmmlu_train, (1 - KMMLU_HOLDOUT,), seed=seed)
            bundle.train += kept
            bundle.validation += held
            bundle.holdout_rows = len(held)
        if sources.kmmlu or sources.dataset:
            bundle.validation += _kmmlu_split(sources, "dev")
        for extra in sources.extra:
            is_dir = Path(extra).is_dir()
            bundle.train += load_labelled_folder(extra) if is_dir else load_labelled_file(extra)
    if sources.synthetic:
        syn_train, syn_val, syn_test = stratified_split(
            load_labelled_folder(sources.synthetic), SYNTHETIC_FRACTIONS, seed=seed
        )
        if with_train:
            bundle.train += syn_train
            bundle.validation += syn_val
        bundle.synthetic_test = syn_test
    if with_test:
        bundle.kmmlu_test = _kmmlu_split(sources, "test")
    if sources.korean_text:
        ood = load_ood_questions(sources.korean_text)
        for name in ("question-pair", "korquad"):
            oe, val, test = _cut(ood[name], OOD_FRACTIONS)
            bundle.ood_train += oe
            bundle.ood_validation += val
            bundle.ood_test[name] = test
        bundle.ood_train += ood["sentences"]
    return bundle

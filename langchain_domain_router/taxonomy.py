"""A model's taxonomy: its labels, their display names and groups, read from the checkpoint.

A classifier checkpoint carries its labels (``id2label``) and, in its routing block
(``CALIBRATION_KEY`` of ``config.json``), optional ``display_names`` and ``groups``: the
groups play the role KMMLU's supercategories play for the default model (hierarchical
fallback). A checkpoint without groups whose labels are all KMMLU subjects gets the KMMLU
taxonomy, so every KMMLU model keeps its supercategories and Korean names.

The 45 KMMLU subjects (``KMMLU_DOMAINS``) are the default model's taxonomy and the one
source of truth for their names and supercategories: subject names are spelled exactly as
KMMLU spells them (``HAERAE-HUB/KMMLU`` config names); supercategories follow the KMMLU
paper (Son et al., 2024).
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from langchain_domain_router.schema import CALIBRATION_KEY

Supercategory = Literal["STEM", "Applied Science", "HUMSS", "Other"]
"""The four KMMLU supercategories."""

SUPERCATEGORIES: tuple[Supercategory, ...] = ("STEM", "Applied Science", "HUMSS", "Other")


class Domain(BaseModel):
    """One KMMLU subject.

    Example:
        ```python
        from langchain_domain_router import KMMLU_DOMAINS

        KMMLU_DOMAINS["Math"].korean_name  # '수학'
        KMMLU_DOMAINS["Math"].supercategory  # 'STEM'
        ```
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """The subject exactly as KMMLU spells it, e.g. ``Railway-and-Automotive-Engineering``."""
    korean_name: str
    """A Korean display name."""
    supercategory: Supercategory
    """The KMMLU supercategory the subject belongs to."""


_ROWS: tuple[tuple[str, str, Supercategory], ...] = (
    ("Accounting", "회계학", "HUMSS"),
    ("Agricultural-Sciences", "농업과학", "Other"),
    ("Aviation-Engineering-and-Maintenance", "항공정비", "Applied Science"),
    ("Biology", "생물학", "STEM"),
    ("Chemical-Engineering", "화학공학", "STEM"),
    ("Chemistry", "화학", "STEM"),
    ("Civil-Engineering", "토목공학", "STEM"),
    ("Computer-Science", "컴퓨터과학", "STEM"),
    ("Construction", "건설", "Other"),
    ("Criminal-Law", "형법", "HUMSS"),
    ("Ecology", "생태학", "STEM"),
    ("Economics", "경제학", "HUMSS"),
    ("Education", "교육학", "HUMSS"),
    ("Electrical-Engineering", "전기공학", "STEM"),
    ("Electronics-Engineering", "전자공학", "Applied Science"),
    ("Energy-Management", "에너지관리", "Applied Science"),
    ("Environmental-Science", "환경과학", "Applied Science"),
    ("Fashion", "패션", "Other"),
    ("Food-Processing", "식품가공", "Other"),
    ("Gas-Technology-and-Engineering", "가스기술", "Applied Science"),
    ("Geomatics", "측량학", "Applied Science"),
    ("Health", "보건", "Other"),
    ("Industrial-Engineer", "산업공학", "Applied Science"),
    ("Information-Technology", "정보기술", "STEM"),
    ("Interior-Architecture-and-Design", "실내건축", "Other"),
    ("Korean-History", "한국사", "HUMSS"),
    ("Law", "법학", "HUMSS"),
    ("Machine-Design-and-Manufacturing", "기계설계제작", "Applied Science"),
    ("Management", "경영학", "HUMSS"),
    ("Maritime-Engineering", "해양공학", "Applied Science"),
    ("Marketing", "마케팅", "Other"),
    ("Materials-Engineering", "재료공학", "STEM"),
    ("Math", "수학", "STEM"),
    ("Mechanical-Engineering", "기계공학", "STEM"),
    ("Nondestructive-Testing", "비파괴검사", "Applied Science"),
    ("Patent", "특허", "Other"),
    ("Political-Science-and-Sociology", "정치사회학", "HUMSS"),
    ("Psychology", "심리학", "HUMSS"),
    ("Public-Safety", "공공안전", "Other"),
    ("Railway-and-Automotive-Engineering", "철도자동차공학", "Applied Science"),
    ("Real-Estate", "부동산", "Other"),
    ("Refrigerating-Machinery", "냉동기계", "Other"),
    ("Social-Welfare", "사회복지", "HUMSS"),
    ("Taxation", "세무", "HUMSS"),
    ("Telecommunications-and-Wireless-Technology", "통신무선기술", "Applied Science"),
)

KMMLU_DOMAINS: Mapping[str, Domain] = MappingProxyType(
    {name: Domain(name=name, korean_name=ko, supercategory=sup) for name, ko, sup in _ROWS}
)
"""The 45 KMMLU subjects, keyed by their KMMLU name, in alphabetical order."""

_SHOWN = 60
"""Domains an error message lists before it shortens the list."""


class Taxonomy(BaseModel):
    """The labels a classifier model predicts, their display names and their groups.

    Example:
        ```python
        from langchain_domain_router import Taxonomy

        taxonomy = Taxonomy(
            labels=("finance", "travel"),
            display_names={"finance": "재무"},
            groups={"finance": "money"},
        )
        taxonomy.check_domain("finance")  # 'finance'
        taxonomy.group_of("finance"), taxonomy.display("finance")  # ('money', 'finance (재무)')
        Taxonomy.of_model("my-domains").labels  # a directory fit-domains wrote
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: tuple[str, ...]
    """The labels in the model's ``id2label`` order."""
    display_names: dict[str, str] = Field(default_factory=dict)
    """A readable name per label (Korean names for KMMLU), shown in routing explanations."""
    groups: dict[str, str] = Field(default_factory=dict)
    """The group of each label that has one: experts may claim a group
    (``ExpertProfile.supercategories``), which then answers its uncertain questions."""
    name: str = "model"
    """What the taxonomy is called in error messages (``KMMLU`` for the default model's)."""

    @classmethod
    def kmmlu(cls) -> Taxonomy:
        """The default model's taxonomy: the 45 KMMLU subjects and their supercategories."""
        return _kmmlu()

    @classmethod
    def of(cls, config: Any) -> Taxonomy:
        """Read the taxonomy of a model config (``transformers`` or a ``config.json`` dict).

        Args:
            config: An object with ``id2label`` (and a routing block), or a dict of one.

        Returns:
            The taxonomy: the KMMLU one when the checkpoint names no groups and all its
            labels are KMMLU subjects.
        """
        if isinstance(config, dict):
            id2label, block = config.get("id2label") or {}, config.get(CALIBRATION_KEY)
        else:
            id2label, block = (
                getattr(config, "id2label", None) or {},
                getattr(config, CALIBRATION_KEY, None),
            )
        labels = tuple(str(id2label[key]) for key in sorted(id2label, key=int))
        block = block or {}
        groups, names = block.get("groups"), block.get("display_names")
        kmmlu = [label for label in labels if label in KMMLU_DOMAINS]
        if not groups and not names and kmmlu:
            # A KMMLU checkpoint: its subjects keep their supercategories and Korean names.
            known = cls.kmmlu()
            groups = {label: group for label, group in known.groups.items() if label in kmmlu}
            names = {label: known.display_names[label] for label in kmmlu}
            if len(kmmlu) == len(labels):
                return cls(labels=labels, display_names=names, groups=groups, name=known.name)
        return cls(
            labels=labels,
            display_names=dict(names or {}),
            groups=dict(groups or {}),
            name=str(block.get("model_version") or "model"),
        )

    @classmethod
    def of_model(cls, path: str | Path) -> Taxonomy:
        """Read the taxonomy of a local model directory.

        Args:
            path: A model directory holding ``config.json``.

        Returns:
            The taxonomy.

        Raises:
            ValueError: If ``config.json`` is missing or unreadable.
        """
        file = Path(path).expanduser() / "config.json"
        try:
            stamp = file.stat().st_mtime_ns
        except OSError as exc:
            msg = f"{str(path)!r} is not a model directory: it has no config.json"
            raise ValueError(msg) from exc
        return _read_model_taxonomy(str(file), stamp)

    @property
    def group_names(self) -> tuple[str, ...]:
        """The groups, in the order ``groups`` first names them."""
        return tuple(dict.fromkeys(self.groups.values()))

    def group_of(self, label: str) -> str | None:
        """The group of ``label``, or ``None`` when it has none."""
        return self.groups.get(label)

    def display(self, label: str) -> str:
        """``label`` with its display name, e.g. ``Math (수학)``."""
        shown = self.display_names.get(label)
        return f"{label} ({shown})" if shown and shown != label else label

    def check_domain(self, domain: str, what: str = "domain") -> str:
        """Return ``domain`` if the model predicts it, else raise with a "did you mean".

        Raises:
            ValueError: Naming the model's domains.
        """
        return _check(domain, self.labels, f"{self.name} {what}")

    def check_group(self, group: str) -> str:
        """Return ``group`` if the model has it, else raise with a "did you mean".

        Raises:
            ValueError: Naming the model's groups.
        """
        return _check(group, self.group_names, f"{self.name} group")

    def check_domains(self, domains: Iterable[str], where: str) -> None:
        """Check several names at once; the error starts with ``where`` (a config field).

        Raises:
            ValueError: For the first unknown name.
        """
        for domain in domains:
            try:
                self.check_domain(domain)
            except ValueError as exc:
                msg = f"{where}: {exc}"
                raise ValueError(msg) from None

    def write(self, config: dict[str, Any]) -> None:
        """Store ``id2label``, the display names and the groups in a ``config.json`` dict."""
        config["id2label"] = {str(i): label for i, label in enumerate(self.labels)}
        config["label2id"] = {label: i for i, label in enumerate(self.labels)}
        config["num_labels"] = len(self.labels)
        block = config.setdefault(CALIBRATION_KEY, {})
        block["display_names"] = dict(self.display_names)
        block["groups"] = dict(self.groups)


def _check(name: str, known: tuple[str, ...], what: str) -> str:
    if name in known:
        return name
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(known[:_SHOWN]) + (" ..." if len(known) > _SHOWN else "")
    msg = f"unknown {what} {name!r}{hint} (the model's: {shown or 'none'})"
    raise ValueError(msg)


@functools.cache
def _kmmlu() -> Taxonomy:
    return Taxonomy(
        labels=tuple(KMMLU_DOMAINS),
        display_names={name: d.korean_name for name, d in KMMLU_DOMAINS.items()},
        # Grouped in the supercategories' own order, which ``group_names`` keeps.
        groups={
            name: sup
            for sup in SUPERCATEGORIES
            for name, d in KMMLU_DOMAINS.items()
            if d.supercategory == sup
        },
        name="KMMLU",
    )


@functools.lru_cache(maxsize=16)
def _read_model_taxonomy(file: str, stamp: int) -> Taxonomy:
    del stamp  # part of the cache key: a rewritten config.json is read again
    try:
        raw = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"cannot read {file}: {exc}"
        raise ValueError(msg) from exc
    return Taxonomy.of(raw if isinstance(raw, Mapping) else {})

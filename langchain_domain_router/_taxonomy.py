"""The 45 KMMLU subjects: the one source of truth for names and supercategories.

Subject names are spelled exactly as KMMLU spells them (``HAERAE-HUB/KMMLU`` config
names); supercategories follow the KMMLU paper (Son et al., 2024).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict

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


def supercategory_of(label: str) -> Supercategory | None:
    """Return the KMMLU supercategory of ``label``, or ``None`` outside the taxonomy.

    Args:
        label: A subject name as KMMLU spells it.

    Returns:
        The supercategory, or ``None`` when ``label`` is not a KMMLU subject.
    """
    domain = KMMLU_DOMAINS.get(label)
    return domain.supercategory if domain else None

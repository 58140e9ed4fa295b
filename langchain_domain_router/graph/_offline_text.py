"""What the offline expert says, in the question's language: where it would go, and why.

A Korean question gets the whole text in Korean, any other question the whole text in
English; each names one reason the model was not used. The routing reason is told from
the routing record, so a low-confidence or out-of-domain question reads "no domain",
with the best guess only as a detail. Experts without a reachable model get one plain
notice at build time that says how to set a key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_domain_router.taxonomy import KMMLU_DOMAINS

OFFLINE_MODEL = "offline"
"""The ``model`` value that asks for the offline expert explicitly."""
NO_API_KEY = "no API key is set"
"""Why a model was not used, when its provider found no key: the usual case."""
ASKED_FOR_OFFLINE = "the profile asks for the offline expert"
"""Why a model was not used, when the profile names ``model: offline``."""
HEADER = "[offline expert]"
"""How every offline answer starts: it never passes for an LLM answer."""

_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_KOREAN_UNAVAILABLE = {
    NO_API_KEY: "API 키가 설정되어 있지 않습니다",
    ASKED_FOR_OFFLINE: "설정에서 오프라인 전문가를 지정했습니다",
}


def is_korean(text: str) -> bool:
    """Whether ``text`` holds Hangul."""
    return _HANGUL.search(text) is not None


def offline_text(
    *,
    expert: str,
    target_model: str,
    reason: str,
    unavailable: str | None,
    routing: Mapping[str, Any],
    korean: bool,
) -> str:
    """The offline expert's answer.

    Args:
        expert: The expert that would answer.
        target_model: The model that would answer.
        reason: The routing record's ``explanation`` (the English text's reason).
        unavailable: Why the model could not be used.
        routing: The routing record (the Korean text's reason is told from it).
        korean: Write in Korean rather than English.

    Returns:
        The text, one line per statement.
    """
    if korean:
        lines = [
            f"{HEADER} 답변 모델에 연결되지 않아 라우팅 결과만 알려 드립니다.",
            f"이 질문은 '{expert}' 전문가(모델: {target_model})가 답합니다.",
            f"이유: {_korean_reason(expert, routing)}.",
            f"모델을 쓰지 못한 이유: {_KOREAN_UNAVAILABLE.get(unavailable or '', unavailable)}.",
            "실제 답변을 받으려면 OPENAI_API_KEY(OpenAI 호환 서버라면 OPENAI_BASE_URL도)를 "
            "설정하거나 전문가 모델을 설정하세요.",
        ]
    else:
        lines = [
            f"{HEADER} No answer model is reachable, so this is the routing decision only.",
            f"This question would be answered by expert '{expert}' (model: {target_model}).",
            f"Why: {reason}.",
            f"Model not used: {unavailable}.",
            "Set OPENAI_API_KEY (and OPENAI_BASE_URL for any OpenAI-compatible server) "
            "or configure the experts to get real answers.",
        ]
    if not unavailable:
        del lines[3]
    return "\n".join(lines)


def _korean_name(domain: str) -> str:
    info = KMMLU_DOMAINS.get(domain)
    return info.korean_name if info else domain


def _korean_reason(expert: str, routing: Mapping[str, Any]) -> str:
    domain = _korean_name(str(routing.get("domain", "")))
    score = float(routing.get("score") or 0.0)
    why = {
        "confident": f"{domain} 분야({score:.2f})로 분류되어 '{expert}' 전문가가 맡습니다",
        "unmapped_domain": (
            f"{domain} 분야({score:.2f})를 맡은 전문가가 없어 일반 전문가가 답합니다"
        ),
        "sticky": f"이어지는 질문이라 앞선 대화의 {domain} 분야 전문가가 계속 답합니다",
        "fan_out": "두 분야의 점수가 비슷해 두 전문가가 함께 답합니다",
        "expert_error": (
            f"'{routing.get('failed_expert')}' 전문가가 실패해 일반 전문가가 답합니다 "
            f"(오류: {routing.get('error')})"
        ),
    }
    unsure = f"분야를 정할 수 없습니다(가장 가까운 추정: {domain} {score:.2f}). "
    unsure += f"'{expert}' 전문가가 답합니다"
    return why.get(str(routing.get("reason")), unsure)


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
    missing = [(node, model) for node, model in unreachable if model != OFFLINE_MODEL]
    if not missing:
        return None
    nodes = ", ".join(dict.fromkeys(node for node, _ in missing))
    hints = " or ".join(dict.fromkeys(_key_hint(model) for _, model in missing))
    return (
        f"no chat model available for {nodes}: the offline expert answers with the routing "
        f"decision; set {hints} for real answers"
    )

"""Routing rules: from a prediction and a configuration to a routing decision."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_domain_router._taxonomy import KMMLU_DOMAINS
from langchain_domain_router.config import GENERAL_NODE, RouterConfig
from langchain_domain_router.schema import DomainPrediction, RoutingDecision, RoutingReason


@dataclass(frozen=True)
class Thresholds:
    """The thresholds in force for one router."""

    min_confidence: float
    min_margin: float


def resolve_thresholds(config: RouterConfig, model_settings: dict[str, object]) -> Thresholds:
    """Take thresholds from the config, else from the model's calibration, else defaults.

    Args:
        config: The router configuration.
        model_settings: The ``domain_router`` block of the classifier's config.

    Returns:
        The thresholds to use.
    """
    confidence = config.min_confidence
    if confidence is None:
        confidence = float(model_settings.get("min_confidence", 0.5))  # type: ignore[arg-type]
    margin = config.min_margin
    if margin is None:
        margin = float(model_settings.get("min_margin", 0.0))  # type: ignore[arg-type]
    return Thresholds(min_confidence=confidence, min_margin=margin)


def _display(domain: str) -> str:
    info = KMMLU_DOMAINS.get(domain)
    return f"{domain} ({info.korean_name})" if info else domain


def decide(
    prediction: DomainPrediction,
    config: RouterConfig,
    thresholds: Thresholds,
    *,
    classifier_latency_ms: float,
) -> RoutingDecision:
    """Choose the node that answers, and say why.

    Rules, in order: a top score below ``min_confidence`` is ``low_confidence``; a
    top-1 minus top-2 gap below ``min_margin`` is ``low_margin``; in both cases the
    question goes to the expert of the top supercategory when that supercategory holds at
    least ``min_supercategory_confidence`` and has an expert, else to ``general``. A
    confident domain no expert covers is ``unmapped_domain`` (``general``); otherwise the
    domain's expert answers (``confident``).

    Args:
        prediction: The classifier's prediction.
        config: The router configuration.
        thresholds: The thresholds in force.
        classifier_latency_ms: How long classification took.

    Returns:
        The decision (expert latency and usage are filled in after the expert answers).
    """
    domain = _display(prediction.label)
    score, margin = prediction.score, prediction.margin
    reason: RoutingReason
    expert = None
    if score < thresholds.min_confidence or margin < thresholds.min_margin:
        if score < thresholds.min_confidence:
            reason = "low_confidence"
            why = f"{domain} scored {score:.2f} < min_confidence {thresholds.min_confidence:.2f}"
        else:
            reason = "low_margin"
            why = f"{domain} leads by {margin:.2f} < min_margin {thresholds.min_margin:.2f}"
        sup, mass = max(prediction.supercategory_scores.items(), key=lambda item: item[1])
        candidate = config.expert_for_supercategory(sup)
        if candidate and mass >= config.min_supercategory_confidence:
            expert = candidate
            why += f"; supercategory {sup} holds {mass:.2f}, so its expert {expert.name!r} answers"
        else:
            why += "; the general expert answers"
    else:
        expert = config.expert_for_domain(prediction.label)
        if expert is None:
            reason = "unmapped_domain"
            why = f"{domain} scored {score:.2f} but no expert covers it; the general expert answers"
        else:
            reason = "confident"
            why = f"{domain} scored {score:.2f} (margin {margin:.2f})"
            why += f"; expert {expert.name!r} covers it"
    profile = expert or config.fallback
    return RoutingDecision(
        domain=prediction.label,
        score=score,
        margin=margin,
        top_k=prediction.top_k,
        supercategory=prediction.supercategory,
        expert=expert.name if expert else GENERAL_NODE,
        reason=reason,
        explanation=why,
        model=profile.model_name,
        classifier_latency_ms=classifier_latency_ms,
        model_version=prediction.model_version,
        min_confidence=thresholds.min_confidence,
        min_margin=thresholds.min_margin,
    )

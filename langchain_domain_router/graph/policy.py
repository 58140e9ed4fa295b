"""Routing rules: from a prediction and a configuration to a routing decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_domain_router.classifier import Calibration
from langchain_domain_router.config import RouterConfig
from langchain_domain_router.profiles import CandidateModel, ExpertProfile
from langchain_domain_router.schema import (
    GENERAL_NODE,
    MERGE_NODE,
    REASON_FAN_OUT,
    DomainPrediction,
    RoutingDecision,
    RoutingReason,
)

_STICKY_FROM: frozenset[RoutingReason] = frozenset({"confident", "sticky", REASON_FAN_OUT})
"""Previous reasons a conversation may stick to: a real domain expert answered."""


@dataclass(frozen=True)
class Thresholds:
    """The thresholds in force for one router."""

    min_confidence: float
    min_margin: float


def resolve_thresholds(config: RouterConfig, calibration: Calibration) -> Thresholds:
    """Take thresholds from the config, else from the model's calibration.

    Args:
        config: The router configuration.
        calibration: The classifier model's calibration (its defaults when it has none).

    Returns:
        The thresholds to use.
    """
    confidence = config.min_confidence
    margin = config.min_margin
    return Thresholds(
        min_confidence=calibration.min_confidence if confidence is None else confidence,
        min_margin=calibration.min_margin if margin is None else margin,
    )


def _display(domain: str, config: RouterConfig) -> str:
    return config.taxonomy.display(domain) if config.taxonomy else domain


@dataclass(frozen=True)
class _Route:
    reason: RoutingReason
    why: str
    expert: ExpertProfile | None = None
    domain: str | None = None
    fan_out: tuple[str, ...] = ()


def _base_route(
    prediction: DomainPrediction, config: RouterConfig, thresholds: Thresholds
) -> _Route:
    domain = _display(prediction.label, config)
    score, margin = prediction.score, prediction.margin
    if score >= thresholds.min_confidence and margin >= thresholds.min_margin:
        expert = config.expert_for_domain(prediction.label)
        if expert is None:
            why = f"{domain} scored {score:.2f} but no expert covers it; the general expert answers"
            return _Route("unmapped_domain", why)
        why = f"{domain} scored {score:.2f} (margin {margin:.2f}); expert {expert.name!r} covers it"
        return _Route("confident", why, expert)
    reason: RoutingReason
    # No domain is meant: the top label is only a best guess, and reads as one.
    if score < thresholds.min_confidence:
        reason = "low_confidence"
        why = f"no domain: the best guess, {domain}, scored {score:.2f}"
        why += f" < min_confidence {thresholds.min_confidence:.2f}"
    else:
        reason = "low_margin"
        why = f"no domain: the best guess, {domain}, leads by {margin:.2f}"
        why += f" < min_margin {thresholds.min_margin:.2f}"
    groups = prediction.supercategory_scores.items()
    sup, mass = max(groups, key=lambda item: item[1]) if groups else ("", 0.0)
    expert = config.expert_for_supercategory(sup) if sup else None
    if expert and mass >= config.min_supercategory_confidence:
        why += f"; supercategory {sup} holds {mass:.2f}, so its expert {expert.name!r} answers"
        return _Route(reason, why, expert)
    return _Route(reason, why + "; the general expert answers")


def _sticky_route(
    prediction: DomainPrediction, config: RouterConfig, previous: Mapping[str, Any] | None
) -> _Route | None:
    settings = config.sticky
    if not settings.enabled or not previous or previous.get("reason") not in _STICKY_FROM:
        return None
    if prediction.score >= settings.switch_confidence:
        return None
    expert = config.expert_for_domain(str(previous["domain"]))
    if expert is None:
        return None
    why = (
        f"follow-up: {_display(prediction.label, config)} scored {prediction.score:.2f} < "
        f"switch_confidence {settings.switch_confidence:.2f}, so the conversation stays with "
        f"{_display(str(previous['domain']), config)} and expert {expert.name!r}"
    )
    return _Route("sticky", why, expert, domain=str(previous["domain"]))


def _fan_out_route(prediction: DomainPrediction, config: RouterConfig) -> _Route | None:
    settings = config.fan_out
    if not settings.enabled or len(prediction.top_k) < 2:
        return None
    first, second = prediction.top_k[0], prediction.top_k[1]
    if prediction.margin >= settings.max_margin or second.score < settings.min_second_score:
        return None
    experts = [config.expert_for_domain(first.label), config.expert_for_domain(second.label)]
    if experts[0] is None or experts[1] is None or experts[0].name == experts[1].name:
        return None
    names = (experts[0].name, experts[1].name)
    why = (
        f"{_display(first.label, config)} {first.score:.2f} and {_display(second.label, config)} "
        f"{second.score:.2f} are within {settings.max_margin:.2f}; experts {list(names)} both "
        "answer and the answers are merged"
    )
    return _Route(REASON_FAN_OUT, why, fan_out=names)


def decide(
    prediction: DomainPrediction,
    config: RouterConfig,
    thresholds: Thresholds,
    *,
    classifier_latency_ms: float,
    previous: Mapping[str, Any] | None = None,
) -> RoutingDecision:
    """Choose the node that answers, and say why.

    Rules, in order: with ``sticky`` on, a follow-up whose prediction scores below
    ``switch_confidence`` stays with the previous turn's expert (``sticky``); with
    ``fan_out`` on, two close top domains with different experts both answer
    (``fan_out``). Otherwise a top score below ``min_confidence`` is
    ``low_confidence`` and a top-1 minus top-2 gap below ``min_margin`` is
    ``low_margin``; in both cases the question goes to the expert of the top
    supercategory when that supercategory holds at least ``min_supercategory_confidence``
    and has an expert, else to ``general``. A confident domain no expert covers is
    ``unmapped_domain`` (``general``); otherwise the domain's expert answers
    (``confident``).

    Args:
        prediction: The classifier's prediction.
        config: The router configuration.
        thresholds: The thresholds in force.
        classifier_latency_ms: How long classification took.
        previous: The previous turn's routing record, if any (for ``sticky``).

    Returns:
        The decision (expert latency and usage are filled in after the expert answers).
    """
    route = (
        _sticky_route(prediction, config, previous)
        or _fan_out_route(prediction, config)
        or _base_route(prediction, config, thresholds)
    )
    if route.fan_out:
        expert_name, model = MERGE_NODE, None
    else:
        profile = route.expert or config.fallback
        expert_name = route.expert.name if route.expert else GENERAL_NODE
        model = profile.model_name
    return RoutingDecision(
        domain=route.domain or prediction.label,
        score=prediction.score,
        margin=prediction.margin,
        top_k=prediction.top_k,
        supercategory=prediction.supercategory,
        expert=expert_name,
        fan_out=list(route.fan_out),
        reason=route.reason,
        explanation=route.why,
        model=model,
        classifier_latency_ms=classifier_latency_ms,
        model_version=prediction.model_version,
        min_confidence=thresholds.min_confidence,
        min_margin=thresholds.min_margin,
    )


def pinned(
    expert: str, config: RouterConfig, thresholds: Thresholds, *, model_version: str
) -> RoutingDecision:
    """The decision for a question whose caller named the expert: no classification.

    Args:
        expert: A configured expert's name, or ``general`` for the fallback.
        config: The router configuration.
        thresholds: The thresholds in force (recorded, not applied).
        model_version: The classifier model's version (recorded; it did not run).

    Returns:
        The decision, with reason ``pinned``; ``domain`` is empty and the scores are 0,
        since no domain was predicted.

    Raises:
        ValueError: If ``expert`` names no configured expert.
    """
    profiles = {profile.name: profile for profile in config.experts}
    profiles[GENERAL_NODE] = config.fallback
    profile = profiles.get(expert)
    if profile is None:
        msg = f"unknown expert {expert[:64]!r}: pin one of {sorted(profiles)}"
        raise ValueError(msg)
    return RoutingDecision(
        domain="",
        score=0.0,
        margin=0.0,
        top_k=[],
        supercategory=None,
        expert=expert,
        reason="pinned",
        explanation=f"the caller pinned expert {expert!r}; the question was not classified",
        model=profile.model_name,
        classifier_latency_ms=0.0,
        model_version=model_version,
        min_confidence=thresholds.min_confidence,
        min_margin=thresholds.min_margin,
    )


def choose_candidate(profile: ExpertProfile, domain: str) -> tuple[int, str]:
    """Pick the model an expert answers ``domain`` with, by cost and measured quality.

    ``cheapest_above_floor``: the cheapest candidate whose quality on ``domain`` reaches
    ``quality_floor`` (the best one when none does). ``best_under_budget``: the best
    quality among candidates whose blended price fits ``budget_per_1m`` (the cheapest
    when none fits). Unmeasured quality counts as 0; equal quality goes to the cheaper.

    Args:
        profile: The expert.
        domain: The question's domain.

    Returns:
        The index of the candidate in ``profile.options()``, and why it was chosen
        (empty when there was no choice).
    """
    if len(profile.candidates) < 2:  # nothing to choose: skip building the options
        return 0, ""
    options = profile.options()

    def quality(candidate: CandidateModel) -> float:
        return candidate.quality.get(domain, 0.0)

    if profile.selection == "cheapest_above_floor":
        floor = profile.quality_floor
        passing = [c for c in options if quality(c) >= floor]
        if passing:
            chosen = min(passing, key=lambda c: c.blended_cost_per_1m)
            rule = f"the cheapest with {domain} quality >= {floor:.2f}"
        else:
            chosen = max(options, key=lambda c: (quality(c), -c.blended_cost_per_1m))
            rule = f"the best on {domain}: none reaches quality {floor:.2f}"
    else:
        budget = float(profile.budget_per_1m or 0.0)
        affordable = [c for c in options if c.blended_cost_per_1m <= budget]
        if affordable:
            chosen = max(affordable, key=lambda c: (quality(c), -c.blended_cost_per_1m))
            rule = f"the best on {domain} within ${budget:g}/1M tokens"
        else:
            chosen = min(options, key=lambda c: c.blended_cost_per_1m)
            rule = f"the cheapest: none fits ${budget:g}/1M tokens"
    why = (
        f"model {chosen.model_name} ({domain} quality {quality(chosen):.2f}, "
        f"${chosen.blended_cost_per_1m:g}/1M tokens) is {rule}"
    )
    return options.index(chosen), why

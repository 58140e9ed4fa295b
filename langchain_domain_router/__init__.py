"""A KMMLU domain-aware router for LangChain and LangGraph.

A KoELECTRA-architecture classifier labels each question with one of the 45 KMMLU
domains; a LangGraph graph sends it to that domain's expert chat model, or to a general
fallback when the classifier is unsure, and returns the answer with the routing record.

The public names are imported on first use, so ``import langchain_domain_router`` (and
the command line, which checks its arguments before anything heavy loads) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_domain_router.classifier import (
        ClassifierSettings,
        DomainClassifier,
        FitReport,
        fit_domains,
    )
    from langchain_domain_router.config import (
        FanOutSettings,
        RouterConfig,
        StickySettings,
        StreamingSettings,
    )
    from langchain_domain_router.feedback import FeedbackStore
    from langchain_domain_router.graph import STREAM_RESET, build_router_graph
    from langchain_domain_router.graph.experts import OfflineExpert
    from langchain_domain_router.profiles import CandidateModel, ExpertProfile, MessagePolicy
    from langchain_domain_router.quality import measure_quality
    from langchain_domain_router.router import DomainRouter, router_tool
    from langchain_domain_router.routes import Route, RoutesFile
    from langchain_domain_router.schema import (
        ROUTING_COMPLETE_EVENT,
        ROUTING_EVENT,
        DomainPrediction,
        LabelScore,
        RouterState,
        RoutingDecision,
        RoutingReason,
    )
    from langchain_domain_router.taxonomy import (
        KMMLU_DOMAINS,
        SUPERCATEGORIES,
        Domain,
        Supercategory,
        Taxonomy,
    )

_MODULE_OF = {
    "AuditCallbackHandler": "audit",
    "AuditSink": "audit",
    "JsonlAuditSink": "audit",
    "FeedbackStore": "feedback",
    "measure_quality": "quality",
    "export_onnx": "classifier",
    "fit_domains": "classifier",
    "FitReport": "classifier",
    "Route": "routes",
    "RoutesFile": "routes",
    "ROUTING_COMPLETE_EVENT": "schema",
    "ROUTING_EVENT": "schema",
    "RouterState": "schema",
    "STREAM_RESET": "graph",
    "router_tool": "router",
    "MessagePolicy": "profiles",
    "StreamingSettings": "config",
    "KMMLU_DOMAINS": "taxonomy",
    "SUPERCATEGORIES": "taxonomy",
    "Domain": "taxonomy",
    "Supercategory": "taxonomy",
    "Taxonomy": "taxonomy",
    "DomainClassifier": "classifier",
    "CandidateModel": "profiles",
    "ClassifierSettings": "classifier",
    "ExpertProfile": "profiles",
    "FanOutSettings": "config",
    "RouterConfig": "config",
    "StickySettings": "config",
    "OfflineExpert": "graph.experts",
    "build_router_graph": "graph",
    "DomainRouter": "router",
    "DomainPrediction": "schema",
    "LabelScore": "schema",
    "RoutingDecision": "schema",
    "RoutingReason": "schema",
}

__all__ = [
    "KMMLU_DOMAINS",
    "ROUTING_COMPLETE_EVENT",
    "ROUTING_EVENT",
    "STREAM_RESET",
    "SUPERCATEGORIES",
    "AuditCallbackHandler",
    "AuditSink",
    "CandidateModel",
    "ClassifierSettings",
    "Domain",
    "DomainClassifier",
    "DomainPrediction",
    "DomainRouter",
    "ExpertProfile",
    "FanOutSettings",
    "FeedbackStore",
    "FitReport",
    "JsonlAuditSink",
    "LabelScore",
    "MessagePolicy",
    "OfflineExpert",
    "RouterConfig",
    "Route",
    "RouterState",
    "RoutesFile",
    "RoutingDecision",
    "RoutingReason",
    "StickySettings",
    "StreamingSettings",
    "Supercategory",
    "Taxonomy",
    "build_router_graph",
    "export_onnx",
    "fit_domains",
    "measure_quality",
    "router_tool",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

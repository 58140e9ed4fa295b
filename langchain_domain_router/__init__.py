"""A KMMLU domain-aware router for LangChain and LangGraph.

A KoELECTRA-architecture classifier labels each question with one of the 45 KMMLU
domains; a LangGraph graph sends it to that domain's expert chat model, or to a general
fallback when the classifier is unsure, and returns the answer with the routing record.
"""

from langchain_domain_router._nodes import ROUTING_COMPLETE_EVENT, ROUTING_EVENT, RouterState
from langchain_domain_router._streaming import STREAM_RESET
from langchain_domain_router._taxonomy import (
    KMMLU_DOMAINS,
    SUPERCATEGORIES,
    Domain,
    Supercategory,
)
from langchain_domain_router._tool import router_tool
from langchain_domain_router.classifier import DomainClassifier
from langchain_domain_router.config import (
    CandidateModel,
    ClassifierSettings,
    ExpertProfile,
    FanOutSettings,
    MessagePolicy,
    RouterConfig,
    StickySettings,
    StreamingSettings,
)
from langchain_domain_router.experts import OfflineExpert
from langchain_domain_router.graph import build_router_graph
from langchain_domain_router.router import DomainRouter
from langchain_domain_router.schema import (
    DomainPrediction,
    LabelScore,
    RoutingDecision,
    RoutingReason,
)

__all__ = [
    "KMMLU_DOMAINS",
    "ROUTING_COMPLETE_EVENT",
    "ROUTING_EVENT",
    "STREAM_RESET",
    "SUPERCATEGORIES",
    "CandidateModel",
    "ClassifierSettings",
    "Domain",
    "DomainClassifier",
    "DomainPrediction",
    "DomainRouter",
    "ExpertProfile",
    "FanOutSettings",
    "LabelScore",
    "MessagePolicy",
    "OfflineExpert",
    "RouterConfig",
    "RouterState",
    "RoutingDecision",
    "RoutingReason",
    "StickySettings",
    "StreamingSettings",
    "Supercategory",
    "build_router_graph",
    "router_tool",
]

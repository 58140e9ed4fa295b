"""A KMMLU domain-aware router for LangChain and LangGraph."""

from langchain_domain_router._taxonomy import KMMLU_DOMAINS, SUPERCATEGORIES, Domain

__all__ = ["KMMLU_DOMAINS", "SUPERCATEGORIES", "Domain"]

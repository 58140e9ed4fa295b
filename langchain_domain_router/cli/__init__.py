"""The ``domain-router`` command line: classify or route a question, or serve over HTTP."""

from langchain_domain_router.cli._main import build_parser, main

__all__ = ["build_parser", "main"]

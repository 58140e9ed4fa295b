"""The routing graph for LangGraph Platform (``langgraph dev`` / ``langgraph up``).

``langgraph.json`` at the repository root points here. The graph is built from the
configuration file named by ``DOMAIN_ROUTER_CONFIG`` (the example configuration when
unset). The platform supplies the checkpointer, so threads keep multi-turn state.

Example:
    ```bash
    DOMAIN_ROUTER_CONFIG=router.yaml langgraph dev --host 127.0.0.1 --port 2024
    ```
"""

from __future__ import annotations

import os

from langgraph.graph.state import CompiledStateGraph

from langchain_domain_router.config import RouterConfig
from langchain_domain_router.graph import build_router_graph

CONFIG_ENV = "DOMAIN_ROUTER_CONFIG"


def make_graph() -> CompiledStateGraph:
    """Build the routing graph from ``DOMAIN_ROUTER_CONFIG`` (or the example config)."""
    path = os.environ.get(CONFIG_ENV)
    config = RouterConfig.from_file(path) if path else RouterConfig.example()
    return build_router_graph(config, name="domain_router")


graph = make_graph()
"""The graph ``langgraph.json`` serves as ``domain_router``."""

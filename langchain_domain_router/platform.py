"""The routing graph for LangGraph Platform (``langgraph dev`` / ``langgraph up``).

``langgraph.json`` at the repository root points at ``graph``: a graph factory the
platform calls (nothing is built at import; the first call builds it, later calls
return the same graph). The graph is built from the
configuration file named by ``DOMAIN_ROUTER_CONFIG`` (the example configuration when
unset). The platform supplies the checkpointer, so threads keep multi-turn state.

Example:
    ```bash
    DOMAIN_ROUTER_CONFIG=router.yaml langgraph dev --host 127.0.0.1 --port 2024
    ```
"""

from __future__ import annotations

import functools

from langgraph.graph.state import CompiledStateGraph

from langchain_domain_router.config import RouterConfig
from langchain_domain_router.graph import build_router_graph


@functools.cache
def graph() -> CompiledStateGraph:
    """The routing graph from ``DOMAIN_ROUTER_CONFIG`` (or the example config), built once."""
    return build_router_graph(RouterConfig.from_env(), name="domain_router")

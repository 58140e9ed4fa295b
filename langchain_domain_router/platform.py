"""The routing graph for LangGraph Platform (``langgraph dev`` / ``langgraph up``).

``langgraph.json`` at the repository root points at ``graph``: an async graph factory
the platform awaits per run. Nothing is built at import; the first call builds the
graph in a worker thread (reading the configuration and the model blocks, which the
event loop must not), later calls return the same graph. The graph is built from the
configuration file named by ``DOMAIN_ROUTER_CONFIG`` (the example configuration when
unset). The platform supplies the checkpointer, so threads keep multi-turn state.

Example:
    ```bash
    DOMAIN_ROUTER_CONFIG=router.yaml langgraph dev --host 127.0.0.1 --port 2024
    ```
"""

from __future__ import annotations

import asyncio
import functools

from langgraph.graph.state import CompiledStateGraph

from langchain_domain_router.config import RouterConfig
from langchain_domain_router.graph import build_router_graph
from langchain_domain_router.schema import ROUTER_NAME


@functools.cache
def _build() -> CompiledStateGraph:
    return build_router_graph(RouterConfig.from_env(), name=ROUTER_NAME)


async def graph() -> CompiledStateGraph:
    """The routing graph from ``DOMAIN_ROUTER_CONFIG`` (or the example config), built once."""
    return await asyncio.to_thread(_build)

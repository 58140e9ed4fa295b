"""The routing graph: ``classify`` -> one domain expert or ``general`` -> END.

Its nodes, the routing policy, the experts, the streaming of answers and the agent tool
live here; ``build_router_graph`` is the one public builder.
"""

from langchain_domain_router.graph._build import build_router_graph, wire_router_graph
from langchain_domain_router.graph._streaming import STREAM_RESET, AnswerStream
from langchain_domain_router.graph._tool import TOOL_DESCRIPTION, TOOL_NAME, question_tool

__all__ = [
    "STREAM_RESET",
    "TOOL_DESCRIPTION",
    "TOOL_NAME",
    "AnswerStream",
    "build_router_graph",
    "question_tool",
    "wire_router_graph",
]

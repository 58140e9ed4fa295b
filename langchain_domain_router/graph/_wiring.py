"""The routing graph's wiring: one table of which node follows which, by routing reason.

``wire_router_graph`` draws the graph's edges (``destinations``) from ``WIRING``, and
the nodes pick their next node from it (``next_node``), so the drawing and the routing
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from langgraph.graph import END

from langchain_domain_router.schema import (
    CLASSIFY_NODE,
    GENERAL_NODE,
    MERGE_NODE,
    REASON_EXPERT_ERROR,
    REASON_FAN_OUT,
    RoutingReason,
)

EXPERT: Final = "<expert>"
"""Stands for each configured expert's node."""
CHOSEN: Final = "<chosen>"
"""Stands for the node the routing record names (``routing["expert"]``)."""
FANNED: Final = "<fanned>"
"""Stands for the experts of a fan-out (``routing["fan_out"]``), which run side by side."""

WIRING: Final[Mapping[str, Mapping[RoutingReason | None, str]]] = {
    CLASSIFY_NODE: {REASON_FAN_OUT: FANNED, None: CHOSEN},
    EXPERT: {REASON_EXPERT_ERROR: GENERAL_NODE, REASON_FAN_OUT: MERGE_NODE, None: END},
    MERGE_NODE: {REASON_EXPERT_ERROR: GENERAL_NODE, None: END},
    GENERAL_NODE: {None: END},
}
"""Node (``EXPERT`` for each expert) -> routing reason -> the next node; the ``None``
entry is for every other reason."""


def next_node(node: str, reason: RoutingReason | None) -> str:
    """The node after ``node`` for a question routed for ``reason`` (may be a stand-in)."""
    table = WIRING[node]
    return table.get(reason, table[None]) if reason is not None else table[None]


def destinations(node: str, experts: Sequence[str], *, fan_out: bool) -> tuple[str, ...]:
    """The nodes that may follow ``node``, stand-ins replaced, in ``WIRING``'s order.

    Args:
        node: A node name, or ``EXPERT``.
        experts: The configured experts' node names (``general`` not included).
        fan_out: Whether fan-out is on (else its entries are left out).

    Returns:
        The node names, each once.
    """
    found: list[str] = []
    for reason, target in WIRING[node].items():
        if reason == REASON_FAN_OUT and not fan_out:
            continue
        if target == FANNED:
            found += experts
        elif target == CHOSEN:
            found += [*experts, GENERAL_NODE]
        else:
            found.append(target)
    return tuple(dict.fromkeys(found))

"""``router_tool``: the router as a tool that takes one question string, for agents."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel, Field

from langchain_domain_router.classifier import DomainClassifier
from langchain_domain_router.config import RouterConfig
from langchain_domain_router.router import DomainRouter
from langchain_domain_router.schema import ROUTER_NAME

TOOL_NAME = ROUTER_NAME
TOOL_DESCRIPTION = (
    "Answer a question with the domain expert it belongs to (law, tax, accounting, "
    "medicine, engineering and the other KMMLU subjects; Korean or English). Pass the "
    "question in full, as the user asked it."
)


class RouterToolInput(BaseModel):
    """The router tool's one argument."""

    # ``pattern``: a question of spaces alone is refused by the schema the model sees, and
    # the agent's tool node hands the refusal back to the model as an error message.
    question: str = Field(
        min_length=1, pattern=r"\S", description="The question, in full, as the user asked it."
    )


def router_tool(
    router: DomainRouter | RouterConfig | str | Path | None = None,
    *,
    name: str = TOOL_NAME,
    description: str = TOOL_DESCRIPTION,
    classifier: DomainClassifier | None = None,
) -> StructuredTool:
    """Wrap a router as a tool for ``create_react_agent``, ``create_agent`` or ``bind_tools``.

    The tool takes ``{"question": str}``, returns the answer's text as the tool message
    content and the routing record as its ``artifact`` (``ToolMessage.artifact``). The
    agent's callbacks and config reach the router, so traces nest and audit/metrics
    handlers see the routing.

    Args:
        router: A ``DomainRouter``, a configuration or a path to one (``None``: the
            example configuration).
        name: The tool's name, as the agent's model sees it.
        description: What the tool is for, as the agent's model sees it.
        classifier: The classifier, when ``router`` is a configuration.

    Returns:
        The tool.

    Example:
        ```python
        from langgraph.prebuilt import create_react_agent
        from langchain_domain_router import DomainRouter, router_tool

        router = DomainRouter.from_config("router.yaml")
        agent = create_react_agent(model, [router_tool(router)])  # or router.as_tool()
        agent.invoke({"messages": [("human", "양도소득세는 어떻게 계산하나요?")]})
        ```
    """
    if not isinstance(router, DomainRouter):
        router = DomainRouter.from_config(router, classifier=classifier)
    answerer = router

    def ask(question: str, config: RunnableConfig) -> tuple[str, dict[str, Any]]:
        with _refusal_for_the_model():
            answer = answerer.invoke(question, config)
        return str(answer.text), answer.response_metadata["routing"]

    async def aask(question: str, config: RunnableConfig) -> tuple[str, dict[str, Any]]:
        with _refusal_for_the_model():
            answer = await answerer.ainvoke(question, config)
        return str(answer.text), answer.response_metadata["routing"]

    return StructuredTool.from_function(
        func=ask,
        coroutine=aask,
        name=name,
        description=description,
        args_schema=RouterToolInput,
        response_format="content_and_artifact",
        handle_tool_error=True,  # a ToolException's text goes back to the model
    )


@contextmanager
def _refusal_for_the_model() -> Iterator[None]:
    """Turn the router's refusal of an input into a ``ToolException``.

    The model that wrote the arguments can fix them; an exception out of the whole
    agent run would lose the conversation instead.
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise ToolException(str(exc)) from exc

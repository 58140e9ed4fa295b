"""The router as a tool for agents: one ``question`` string in, the answer and its record out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel, Field

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


def question_tool(
    answerer: Runnable[str, AIMessage], *, name: str, description: str
) -> StructuredTool:
    """Wrap a Runnable that answers a question string as a tool with one ``question`` argument.

    The tool's content is the answer's text, its ``artifact`` the routing record
    (``response_metadata["routing"]``). The agent's config (callbacks, tags) reaches the
    answerer; an input it refuses goes back to the agent's model as a tool error.

    Args:
        answerer: A Runnable that takes the question and returns an ``AIMessage`` with
            the routing record (a ``DomainRouter``).
        name: The tool's name, as the agent's model sees it.
        description: What the tool is for, as the agent's model sees it.

    Returns:
        The tool.
    """

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

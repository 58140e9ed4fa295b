"""``DomainRouter``: the routing graph as one Runnable that answers with an ``AIMessage``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import patch_config
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StreamMode
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import override

from langchain_domain_router._inputs import (
    Question,
    RouterInput,
    check_batch,
    check_config,
    take_question,
)
from langchain_domain_router.classifier import DomainClassifier
from langchain_domain_router.config import RouterConfig
from langchain_domain_router.feedback import FeedbackStore
from langchain_domain_router.graph import (
    TOOL_DESCRIPTION,
    TOOL_NAME,
    AnswerStream,
    question_tool,
    wire_router_graph,
)
from langchain_domain_router.schema import CLASSIFY_NODE, MERGE_NODE


def _final_message(state: Mapping[str, Any]) -> AIMessage:
    message = state["messages"][-1]
    if not isinstance(message, AIMessage):
        msg = "the routing graph ended without an answer"
        raise RuntimeError(msg)
    return message


_MODES: list[StreamMode] = ["messages", "updates"]


class DomainRouter(RunnableSerializable[RouterInput, AIMessage]):
    """Route a question to its domain expert and answer it, with the routing record.

    Accepts what the classifier accepts (a string, messages, a ``PromptValue``, a dict
    with ``question`` or ``messages``) and returns the answering expert's ``AIMessage``;
    ``response_metadata["routing"]`` holds the ``RoutingDecision``. ``stream`` yields
    the answering expert's tokens (a non-streaming expert's message as one chunk), then
    a last empty chunk carrying the routing record; the chunks always add up to the
    text ``invoke`` returns. A failed attempt's tokens are never passed on
    (``config.streaming``: held per attempt, or streamed live and followed by a
    ``stream_reset`` chunk).

    Example:
        ```python
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate
        from langchain_domain_router import DomainRouter

        router = DomainRouter.from_config("router.yaml")
        answer = router.invoke("감가상각 방법 중 정률법의 특징은?")
        answer.response_metadata["routing"]["expert"]

        prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
        chain = prompt | router | StrOutputParser()
        chain.invoke({"question": "양도소득세 계산 방법"})
        ```
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    config: RouterConfig
    """The router configuration."""
    graph: CompiledStateGraph
    """The compiled routing graph."""
    feedback: FeedbackStore = Field(default_factory=FeedbackStore)
    """Where ``record_feedback`` stores corrections (in memory unless given a path)."""

    @classmethod
    def from_config(
        cls,
        config_or_path: RouterConfig | str | Path | None = None,
        *,
        classifier: DomainClassifier | None = None,
        checkpointer: BaseCheckpointSaver | None = None,
        feedback_path: str | Path | None = None,
    ) -> Self:
        """Build a router from a configuration or a YAML/TOML/JSON file.

        Args:
            config_or_path: The configuration, a path to one, or ``None`` for the example
                configuration shipped with the package.
            classifier: The classifier; by default the one the configuration names.
            checkpointer: Optional checkpointer for multi-turn threads (pass a
                ``thread_id`` in ``configurable``).
            feedback_path: A JSONL file for ``record_feedback`` (in memory when ``None``).

        Returns:
            The router.
        """
        return cls._assemble(
            RouterConfig.load(config_or_path),
            classifier=classifier,
            checkpointer=checkpointer,
            feedback_path=feedback_path,
        )

    @classmethod
    def _assemble(
        cls,
        router_config: RouterConfig,
        *,
        classifier: DomainClassifier | None = None,
        checkpointer: BaseCheckpointSaver | None = None,
        feedback_path: str | Path | None = None,
    ) -> Self:
        """``from_config`` of a configuration already loaded (the server loads its own)."""
        classifier = classifier or DomainClassifier.from_settings(router_config.classifier)
        bound = router_config.bind(classifier.taxonomy)
        graph = wire_router_graph(bound, classifier, checkpointer=checkpointer)
        feedback = FeedbackStore(feedback_path, taxonomy=classifier.taxonomy)
        return cls(config=bound, graph=graph, feedback=feedback)

    def _answer(self, state: Mapping[str, Any]) -> AIMessage:
        answer = _final_message(state)
        routing = answer.response_metadata["routing"]
        self.feedback.remember(routing["request_id"], str(state["question"]), routing["domain"])
        return answer

    def record_feedback(
        self, request_id: str, correct_domain: str, *, question: str | None = None
    ) -> dict[str, Any]:
        """Record the correct domain of a question this router routed.

        Misroutes collected this way are a ``text,label`` JSONL file that
        ``domain-router train --feedback FILE`` folds into the next training run.

        Args:
            request_id: ``response_metadata["routing"]["request_id"]`` of the answer.
            correct_domain: The domain the question belongs to (one of the model's).
            question: The question, when this router no longer remembers the request.

        Returns:
            The stored record (``misroute`` says whether the route was wrong).

        Raises:
            ValueError: For an unknown domain, or an unknown request without ``question``.
        """
        return self.feedback.record(request_id, correct_domain, question=question)

    @property
    def answer_nodes(self) -> frozenset[str]:
        """The nodes whose model tokens are the answer."""
        return frozenset(self.graph.nodes) - {CLASSIFY_NODE, MERGE_NODE, "__start__"}

    def _graph_for(self, config: RunnableConfig) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The graph, or for a call that names no thread a copy that stores nothing.

        With a checkpointer every run needs a ``thread_id``; a call without one is a
        one-off conversation, answered without a checkpointer rather than refused.
        """
        if self.graph.checkpointer and not (config.get("configurable") or {}).get("thread_id"):
            return self.graph.copy({"checkpointer": None})
        return self.graph

    def _invoke(
        self, value: RouterInput, run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> AIMessage:
        child = patch_config(config, callbacks=run_manager.get_child())
        question = take_question(value)
        graph = self._graph_for(config)
        return self._answer(graph.invoke(question.state(), child, context=question))

    async def _ainvoke(
        self,
        value: RouterInput,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> AIMessage:
        child = patch_config(config, callbacks=run_manager.get_child())
        question = take_question(value)
        graph = self._graph_for(config)
        return self._answer(await graph.ainvoke(question.state(), child, context=question))

    @override
    def invoke(
        self, input: RouterInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        return self._call_with_config(self._invoke, input, check_config(config), run_type="chain")

    @override
    async def ainvoke(
        self, input: RouterInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        checked = check_config(config)
        return await self._acall_with_config(self._ainvoke, input, checked, run_type="chain")

    def _answer_stream(self) -> AnswerStream:
        return AnswerStream(self.answer_nodes, buffer=self.config.streaming.buffer)

    def _closing_chunk(self, stream: AnswerStream) -> AIMessageChunk:
        """An empty chunk carrying the routing record, so merged chunks have it."""
        answer = self._answer(stream.answer_state())
        return AIMessageChunk(
            content="",
            id=answer.id,
            response_metadata={"routing": answer.response_metadata["routing"]},
        )

    def _start_stream(
        self,
        value: RouterInput,
        run_manager: CallbackManagerForChainRun | AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> tuple[CompiledStateGraph[Any, Any, Any, Any], Question, RunnableConfig, AnswerStream]:
        """One streamed run: its graph, input state, child config and answer stream."""
        child = patch_config(config, callbacks=run_manager.get_child())
        return self._graph_for(config), take_question(value), child, self._answer_stream()

    def _stream_tokens(
        self,
        inputs: Iterator[RouterInput],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> Iterator[AIMessageChunk]:
        for value in inputs:
            graph, question, child, stream = self._start_stream(value, run_manager, config)
            run = graph.stream(question.state(), child, stream_mode=_MODES, context=question)
            for mode, chunk in run:
                yield from stream.feed(mode, chunk)
            yield self._closing_chunk(stream)

    async def _astream_tokens(
        self,
        inputs: AsyncIterator[RouterInput],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
    ) -> AsyncIterator[AIMessageChunk]:
        async for value in inputs:
            graph, question, child, stream = self._start_stream(value, run_manager, config)
            run = graph.astream(question.state(), child, stream_mode=_MODES, context=question)
            async for mode, chunk in run:
                for token in stream.feed(mode, chunk):
                    yield token
            yield self._closing_chunk(stream)

    @override
    def stream(
        self, input: RouterInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[AIMessage]:
        check_config(config)
        yield from self._transform_stream_with_config(
            iter([input]), self._stream_tokens, config, run_type="chain"
        )

    @override
    async def astream(
        self, input: RouterInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessage]:
        check_config(config)

        async def single() -> AsyncIterator[RouterInput]:
            yield input

        async for chunk in self._atransform_stream_with_config(
            single(), self._astream_tokens, config, run_type="chain"
        ):
            yield chunk

    @override
    def as_tool(
        self,
        args_schema: type[BaseModel] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        arg_types: dict[str, type] | None = None,
    ) -> BaseTool:
        """The router as a tool that takes one ``question`` string (see ``router_tool``).

        Raises:
            ValueError: If ``args_schema`` or ``arg_types`` is given: the tool's one
                argument is the question.
        """
        if args_schema is not None or arg_types is not None:
            msg = "the router tool takes one argument, 'question': drop args_schema/arg_types"
            raise ValueError(msg)
        return router_tool(
            self, name=name or TOOL_NAME, description=description or TOOL_DESCRIPTION
        )

    @override
    def batch(
        self,
        inputs: Sequence[RouterInput],  # type: ignore[override]
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        # Each question runs its own graph (experts are independent calls), in threads.
        inputs = check_batch(inputs, config)
        return super().batch(inputs, config, return_exceptions=return_exceptions)

    @override
    async def abatch(
        self,
        inputs: Sequence[RouterInput],  # type: ignore[override]
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        inputs = check_batch(inputs, config)
        return await super().abatch(inputs, config, return_exceptions=return_exceptions)


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
    return question_tool(router, name=name, description=description)

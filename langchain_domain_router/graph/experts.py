"""Expert chat models: resolving profiles, the offline expert, calls with retry/timeout."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import logging
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from pydantic import Field
from typing_extensions import override

from langchain_domain_router._redact import model_secrets, profile_secrets, redact
from langchain_domain_router.graph._offline_text import (
    ASKED_FOR_OFFLINE,
    NO_API_KEY,
    OFFLINE_MODEL,
    is_korean,
    offline_text,
)
from langchain_domain_router.profiles import CandidateModel, ExpertProfile
from langchain_domain_router.schema import EXPERT_OPTIONS

logger = logging.getLogger(__name__)


@functools.cache
def _expert_threads() -> ThreadPoolExecutor:
    """The pool every expert call shares, made on the first call (not at import).

    Starting a thread per call costs ~0.2 ms on an idle CPU and several ms on a busy
    one. A hung call keeps its worker until it returns; when all are hung, new calls
    wait, time out, and the fallback answers.
    """
    return ThreadPoolExecutor(max_workers=32, thread_name_prefix="domain-router-expert")


ATTEMPT_KEY = "domain_router_attempt"
"""Run metadata that numbers each expert call attempt, so a stream can tell the tokens
of a retry from those of the attempt it replaces (message ids may change within one)."""
_ATTEMPTS = itertools.count()

_MISSING_KEY = re.compile(r"credentials|api[_ ]key", re.IGNORECASE)
"""How providers' errors say that no API key was given."""


def resolve_chat_model(candidate: CandidateModel) -> tuple[BaseChatModel | None, str | None]:
    """Build the chat model of an expert's candidate.

    Args:
        candidate: The candidate model (see ``ExpertProfile.options``).

    Returns:
        ``(model, None)`` when the model is available, or ``(None, why)`` when it is
        not (``"offline"`` asked for, a missing API key, a missing provider package):
        the offline expert then answers in its place.
    """
    if isinstance(candidate.model, BaseChatModel):
        return candidate.model, None
    if candidate.model == OFFLINE_MODEL:
        return None, ASKED_FOR_OFFLINE
    from langchain.chat_models import init_chat_model

    try:
        return init_chat_model(candidate.model, **candidate.model_kwargs), None
    except Exception as exc:  # noqa: BLE001 - any provider failure means "unreachable"
        logger.debug("cannot build %s: %r", candidate.model_name, exc)
        first_sentence = str(exc).split(". ")[0].rstrip(".")
        if _MISSING_KEY.search(first_sentence):
            # The usual case, and no fault: say so plainly instead of quoting the error.
            return None, NO_API_KEY
        secrets = model_secrets(candidate.model, candidate.model_kwargs)
        return None, redact(f"{type(exc).__name__}: {first_sentence}", secrets)


class OfflineExpert(BaseChatModel):
    """A stand-in expert that explains where a question would go, instead of answering.

    It is used when an expert's model cannot be reached (no API key, no endpoint), so the
    routing graph runs end to end offline. Its text always starts with
    ``[offline expert]``: it never pretends to be an LLM answer. It is written in Korean
    for a Korean question and in English otherwise.

    Example:
        ```python
        expert = OfflineExpert(expert="law", target_model="openai:gpt-4o", reason="...")
        expert.invoke("근저당권이란?").content
        ```
    """

    expert: str
    """The expert that would answer."""
    target_model: str
    """The model that would answer."""
    reason: str
    """Why the question went to ``expert``."""
    unavailable: str | None = None
    """Why the model could not be used."""
    routing: dict[str, Any] = Field(default_factory=dict)
    """The routing record so far: a Korean question's answer tells the reason from it."""

    @property
    def _llm_type(self) -> str:
        return "domain-router-offline"

    def _text(self, messages: list[BaseMessage]) -> str:
        """The answer, in the language of the last human message."""
        question = next((str(m.text) for m in reversed(messages) if m.type == "human"), "")
        return offline_text(
            expert=self.expert,
            target_model=self.target_model,
            reason=self.reason,
            unavailable=self.unavailable,
            routing=self.routing,
            korean=is_korean(question),
        )

    @override
    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        # The answer is its stream, merged; a call that does not stream reports no tokens.
        return generate_from_stream(self._stream(messages))

    @override
    async def _agenerate(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> ChatResult:
        # Instant work: on the event loop, not through the executor the default takes.
        return self._generate(messages)

    @override
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for line in self._text(messages).splitlines(keepends=True):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=line))
            if run_manager:
                run_manager.on_llm_new_token(line, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata={"offline": True})
        )


def _attempt(config: RunnableConfig) -> RunnableConfig:
    """The node's config with the next attempt number in its metadata."""
    metadata = {**(config.get("metadata") or {}), ATTEMPT_KEY: next(_ATTEMPTS)}
    return {**config, "metadata": metadata}


def call_options(config: RunnableConfig) -> dict[str, Any]:
    """The run's call options for the expert's model (``configurable[EXPERT_OPTIONS]``)."""
    return dict((config.get("configurable") or {}).get(EXPERT_OPTIONS) or {})


def call_expert(
    model: BaseChatModel,
    profile: ExpertProfile,
    messages: list[BaseMessage],
    config: RunnableConfig,
) -> BaseMessage:
    """Call an expert's model with the profile's timeout and ``max_retries`` retries.

    One plain loop, not Runnable wrappers: the model's own run is the only one traced,
    which keeps the graph's overhead per question small.

    Args:
        model: The chat model.
        profile: The expert's profile (``timeout_s``, ``max_retries``).
        messages: The prompt.
        config: The node's config (callbacks, tags), passed to the model; its
            ``configurable[EXPERT_OPTIONS]`` are the model call's keyword arguments.

    Returns:
        The model's reply.

    Raises:
        Exception: The last attempt's error (``TimeoutError`` when it timed out).
    """
    options = call_options(config)
    if isinstance(model, OfflineExpert):
        # In-process text that cannot hang or fail: the thread hop below cost more than the
        # call (1.3-1.7 ms a routed question on two cores) on every offline answer.
        return model.invoke(messages, _attempt(config))
    error: Exception = TimeoutError()
    for _ in range(profile.max_retries + 1):
        # A thread is the only portable way to bound a blocking call; a hung call keeps
        # its thread until it returns, but the graph moves on to the fallback.
        context = contextvars.copy_context()
        call = functools.partial(model.invoke, messages, _attempt(config), **options)
        future = _expert_threads().submit(context.run, call)
        try:
            return future.result(timeout=profile.timeout_s)
        except Exception as exc:  # noqa: BLE001 - every failure is retried, then raised
            error = exc
        finally:
            future.cancel()  # a call still queued behind hung ones never starts
    raise error


async def acall_expert(
    model: BaseChatModel,
    profile: ExpertProfile,
    messages: list[BaseMessage],
    config: RunnableConfig,
) -> BaseMessage:
    """The async ``call_expert``: the same timeout and retries, no thread.

    Raises:
        Exception: The last attempt's error (``TimeoutError`` when it timed out).
    """
    options = call_options(config)
    error: Exception = TimeoutError()
    for _ in range(profile.max_retries + 1):
        try:
            return await asyncio.wait_for(
                model.ainvoke(messages, _attempt(config), **options), profile.timeout_s
            )
        except Exception as exc:  # noqa: BLE001 - every failure is retried, then raised
            error = exc
    raise error


def describe_failure(exc: BaseException, profile: ExpertProfile) -> str:
    """Say what went wrong with an expert, for the routing record, credentials redacted.

    The text goes to the client, the checkpointer, logs and audit lines, and provider
    errors may quote the API key, so it passes through ``redact``.
    """
    attempts = profile.max_retries + 1
    what = (
        f"timed out after {profile.timeout_s:g}s"
        if isinstance(exc, TimeoutError)
        else redact(f"{type(exc).__name__}: {exc}", profile_secrets(profile))
    )
    logger.warning("expert %r failed %d time(s): %s", profile.name, attempts, what)
    return f"{what} ({attempts} attempt{'s' if attempts > 1 else ''})"


def elapsed_ms(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` value)."""
    return (time.perf_counter() - start) * 1000

"""``create_app``: the router and the classifier as a LangServe app, with health and metrics."""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoint signatures.

import asyncio
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.runnables.utils import ConfigurableFieldSpec, get_unique_config_specs
from langgraph.checkpoint.base import BaseCheckpointSaver
from langserve import add_routes
from langserve.callbacks import AsyncEventAggregatorCallback
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import Field
from typing_extensions import override

from langchain_domain_router._redact import install_log_redaction, redact
from langchain_domain_router.audit import AuditCallbackHandler
from langchain_domain_router.classifier import DomainClassifier
from langchain_domain_router.config import RouterConfig, config_secrets
from langchain_domain_router.router import DomainRouter
from langchain_domain_router.schema import DomainPrediction
from langchain_domain_router.server._checkpointer import CheckpointerSpec
from langchain_domain_router.server._idempotency import (
    Idempotency,
    IdempotencyMiddleware,
    open_answer_store,
)
from langchain_domain_router.server._keys import ApiKeyMiddleware, read_keys
from langchain_domain_router.server._lifecycle import (
    ReplicaHeaderMiddleware,
    default_replica_name,
    drain_on_sigterm,
)
from langchain_domain_router.server._limits import LimitsMiddleware
from langchain_domain_router.server._metrics import RouterMetrics
from langchain_domain_router.server._openai import COMPLETIONS_PATH, add_openai_routes
from langchain_domain_router.server._openai_errors import OpenAIErrorsMiddleware
from langchain_domain_router.server._redacting import RedactingMiddleware
from langchain_domain_router.server._requests import (
    CheckedBodyRoute,
    ServedInput,
    parse_router_input,
    parse_served_input,
)
from langchain_domain_router.server._settings import ServerSettings

logger = logging.getLogger(__name__)

ROUTER_PATH = "/router"
CLASSIFY_PATH = "/classify"
_WARM_UP_QUESTION = "서버 준비 확인용 질문입니다"


THREAD_SPECS = [
    ConfigurableFieldSpec(id=key, annotation=str | None, name=key, default=None, is_shared=True)
    for key in ("thread_id", "checkpoint_id")
]
"""The checkpointer's ``configurable`` keys, declared so LangServe lets clients send them."""


class _Served(RunnableBinding[Any, Any]):
    """A runnable as served: fixed types and callbacks, plus declared config keys.

    LangServe keeps only the ``configurable`` keys a runnable declares in
    ``config_specs``; the routing graph declares none, so without this a client's
    ``thread_id`` would be dropped and multi-turn threads could not work over HTTP.
    """

    extra_specs: list[ConfigurableFieldSpec] = Field(default_factory=list)

    @property
    @override
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        return get_unique_config_specs([*super().config_specs, *self.extra_specs])

    @override
    def _merge_configs(self, *configs: RunnableConfig | None) -> RunnableConfig:
        """The run config, without LangServe's recorder of callback events.

        LangServe attaches one to every run for responses that carry the callback
        events; this server's never do (``include_callback_events`` is off), and a
        handler that records chain runs would make the classifier record its own run.
        """
        config = super()._merge_configs(*configs)
        callbacks = config.get("callbacks")
        if isinstance(callbacks, list):
            kept = [h for h in callbacks if not isinstance(h, AsyncEventAggregatorCallback)]
            config["callbacks"] = kept
        return config


@dataclass
class _Readiness:
    ready: bool = False
    error: str | None = None
    draining: bool = False

    def drain(self) -> None:
        self.draining = True


_THREAD_KEYS = ("thread_id", "checkpoint_id")


def _tag_request(
    config: dict[str, Any], request: Request, *, threads: bool | None = None
) -> dict[str, Any]:
    """Put the caller's ``X-Request-ID`` (or a fresh one) in the run metadata.

    ``threads`` says whether the route keeps threads: ``False`` refuses a request that
    names one (422) rather than silently forgetting it; ``None`` does not check.

    Raises:
        HTTPException: 422 for a thread request to a server without a checkpointer.
    """
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    config.setdefault("metadata", {})["http_request_id"] = request_id[:128]
    # LangServe fills undeclared-by-the-client keys with their ``None`` defaults; a
    # ``checkpoint_id`` of ``None`` must mean "absent" to the checkpointer.
    if config.get("configurable"):
        config["configurable"] = {
            key: value for key, value in config["configurable"].items() if value is not None
        }
    named = [key for key in _THREAD_KEYS if (config.get("configurable") or {}).get(key)]
    if threads is False and named:
        detail = (
            f"this server keeps no conversation threads, so it cannot honour {named[0]!r}: "
            "start it with --checkpointer memory|sqlite:PATH|postgres:DSN, or send the "
            "whole conversation as 'messages' without a thread"
        )
        raise HTTPException(status_code=422, detail=detail)
    return config


def create_app(
    config: RouterConfig | str | Path | None = None,
    *,
    classifier: DomainClassifier | None = None,
    settings: ServerSettings | None = None,
    checkpointer: BaseCheckpointSaver | str | None = None,
    callbacks: Sequence[BaseCallbackHandler] = (),
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]] | None = None,
) -> FastAPI:
    """Create the FastAPI app that serves the router and the classifier with LangServe.

    Routes: ``/router`` (the ``DomainRouter``) and ``/classify`` (the
    ``DomainClassifier``), each with ``invoke``, ``batch``, ``stream``,
    ``stream_events`` and the ``playground``; the OpenAI Chat Completions surface
    (``/v1/chat/completions``, ``/v1/models``); ``/healthz`` (the process is up),
    ``/readyz`` (the model is loaded and has answered), ``/metrics`` (Prometheus).
    Every response body leaves through one redaction step (see ``_redacting.py``),
    so no route, mounted here or later, sends out a configured or environment key.
    The app keeps no state of its own, so any number of workers and replicas can run
    side by side; multi-turn threads need a shared ``checkpointer``. A ``/router/invoke``
    resent with the same ``X-Request-ID`` is answered once (its stored answer, kept in a
    ``postgres`` checkpointer's database when there is one); every response names its
    replica in ``x-domain-router-replica``; ``settings.drain_s`` drains on ``SIGTERM``.

    Args:
        config: The router configuration, a YAML/TOML/JSON file, or ``None`` for the
            example configuration.
        classifier: The classifier; by default the one ``config.classifier`` names.
        settings: Limits and the audit sink; by default ``ServerSettings()``.
        checkpointer: Optional checkpointer for multi-turn threads (clients pass
            ``{"configurable": {"thread_id": ...}}``), or a ``--checkpointer`` value
            (``memory``, ``sqlite:PATH``, ``postgres:DSN``) opened with the app; by
            default ``settings.checkpointer``. Without one, a request naming a thread
            is refused with 422; with one, a request without a thread is answered as
            a one-off conversation that is not stored.
        callbacks: More callback handlers to attach to every request.
        lifespan: An async context manager entered around the app's own start-up and
            shut-down, e.g. to open and close the checkpointer's database pool.

    Returns:
        The app, for ``uvicorn`` or any ASGI server.

    Example:
        ```python
        import uvicorn
        from langchain_domain_router.server import create_app

        uvicorn.run(create_app("router.yaml"), host="127.0.0.1", port=8000)
        ```
    """
    router_config = RouterConfig.load(config)
    settings = settings or ServerSettings()
    if classifier is None:
        chosen = router_config.classifier
        if chosen.coalesce_ms is None:
            chosen = chosen.model_copy(update={"coalesce_ms": settings.coalesce_ms})
        classifier = DomainClassifier.from_settings(chosen)
    checkpointer = checkpointer if checkpointer is not None else settings.checkpointer
    spec = CheckpointerSpec.parse(checkpointer) if isinstance(checkpointer, str) else None
    if spec is not None:
        spec.check_installed()
    router = DomainRouter._assemble(
        router_config,
        classifier=classifier,
        checkpointer=None if spec else checkpointer,  # type: ignore[arg-type]
    )
    secrets = config_secrets(router_config)
    metrics = RouterMetrics()
    handlers: list[BaseCallbackHandler] = [metrics, *callbacks]
    audit = None
    if settings.audit_path:
        audit = AuditCallbackHandler(
            settings.audit_path,
            include_prompt=settings.audit_include_prompt,
            secrets=secrets,
        )
        handlers.append(audit)
    readiness = _Readiness()
    idempotency = Idempotency(router.graph)

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        # uvicorn has configured its handlers by now: every log line they write is redacted.
        install_log_redaction(secrets)
        async with AsyncExitStack() as stack:
            if spec is not None:
                # Savers bind to the running event loop, so they open here; the compiled
                # graph reads its checkpointer at each run.
                router.graph.checkpointer = await stack.enter_async_context(spec.open())
            if lifespan:
                await stack.enter_async_context(lifespan(app))
            # Answers kept for resent requests: in the checkpointer's PostgreSQL, if any.
            idempotency.store = await open_answer_store(router.graph.checkpointer)
            drain_on_sigterm(settings.drain_s, readiness.drain)
            try:
                # Load (and warm up) the model off the loop, then one call the way requests
                # come (the async path, coalescer included) so no request pays for either.
                await asyncio.to_thread(classifier.load)
                await classifier.ainvoke(_WARM_UP_QUESTION)
                # What start-up allocated lives as long as the process: keep it out of
                # the collector's full passes, the long pauses in a busy server's p99.
                gc.collect()
                gc.freeze()
                readiness.ready = True
            except Exception as exc:  # /readyz reports it; /healthz still answers
                readiness.error = redact(f"{type(exc).__name__}: {exc}", secrets)
                logger.exception("the classifier could not be loaded")
            yield
            if audit is not None and hasattr(audit.sink, "close"):
                audit.sink.close()

    app = FastAPI(
        title="langchain-domain-router",
        description="Routes questions to KMMLU domain experts (LangServe).",
        lifespan=app_lifespan,
    )
    # LangServe derives request validation from these types; the runnables' own input
    # type includes ``PromptValue``, which has no JSON form.
    served: list[tuple[str, Runnable[Any, Any], type, list[ConfigurableFieldSpec]]] = [
        (ROUTER_PATH, router, AIMessage, THREAD_SPECS),
        (CLASSIFY_PATH, classifier, DomainPrediction, []),
    ]
    threads = checkpointer is not None
    # The limits middleware decodes each body and reads its inputs; the routes take that.
    app.router.route_class = CheckedBodyRoute
    for path, runnable, output_type, specs in served:
        binding = _Served(
            bound=runnable,
            config={"callbacks": handlers, "run_name": path.strip("/")},
            custom_input_type=ServedInput,
            custom_output_type=output_type,
            extra_specs=specs,
        )
        tag = partial(_tag_request, threads=threads if specs else None)
        add_routes(app, binding, path=path, per_req_config_modifier=tag)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(response: Response) -> dict[str, Any]:
        if readiness.draining:
            response.status_code = 503
            return {"status": "draining", "error": None}
        if readiness.ready:
            return {"status": "ready", "model_version": classifier.model_version}
        response.status_code = 503
        return {"status": "error" if readiness.error else "loading", "error": readiness.error}

    @app.get("/metrics", tags=["ops"])
    async def prometheus_metrics() -> Response:
        return Response(content=metrics.render(), media_type=CONTENT_TYPE_LATEST)

    add_openai_routes(app, router, callbacks=handlers, tag=_tag_request)
    metrics.track_endpoints(_route_paths(app))
    app.state.metrics = metrics
    app.state.router = router
    app.state.classifier = classifier
    validators = {ROUTER_PATH: parse_router_input, CLASSIFY_PATH: parse_served_input}
    # The last added is the outermost: limits apply before a stored answer is looked up.
    app.add_middleware(IdempotencyMiddleware, path=f"{ROUTER_PATH}/invoke", idempotency=idempotency)
    app.add_middleware(
        LimitsMiddleware,
        settings=settings,
        metrics=metrics,
        validate_input=validators,
        guarded={COMPLETIONS_PATH: "messages"},
    )
    app.add_middleware(OpenAIErrorsMiddleware)
    app.add_middleware(
        ReplicaHeaderMiddleware, name=settings.replica_name or default_replica_name()
    )
    if settings.api_keys:  # a caller without a key gets nothing else
        app.add_middleware(ApiKeyMiddleware, keys=read_keys(settings.api_keys), metrics=metrics)
    # Outermost, so every body leaves through it: routes mounted later, refusals and limit
    # errors too.
    app.state.secrets = secrets
    app.add_middleware(RedactingMiddleware, secrets=secrets)
    return app


def _route_paths(app: FastAPI) -> Iterable[str]:
    """Paths without parameters: the bounded set that metrics label by name."""
    for route in app.routes:
        path = getattr(route, "path", "")
        if path and "{" not in path:
            yield path


def create_app_from_env() -> FastAPI:
    r"""Create the app from ``DOMAIN_ROUTER_*`` variables: the factory uvicorn workers use.

    ``DOMAIN_ROUTER_CONFIG`` names the configuration file (unset: the example
    configuration); the other variables set ``ServerSettings`` fields.

    Returns:
        The app.

    Example:
        ```bash
        DOMAIN_ROUTER_CONFIG=router.yaml uvicorn --factory --workers 4 \\
            langchain_domain_router.server:create_app_from_env
        ```
    """
    return create_app(RouterConfig.from_env(), settings=ServerSettings.from_env())

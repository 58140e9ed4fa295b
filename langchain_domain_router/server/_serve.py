"""``serve``: run the app under uvicorn, with one or several worker processes."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

from langchain_domain_router.classifier import DomainClassifier
from langchain_domain_router.config import CONFIG_ENV, RouterConfig
from langchain_domain_router.server._checkpointer import CheckpointerSpec
from langchain_domain_router.server._keys import check_exposure, read_keys
from langchain_domain_router.server._settings import ServerSettings

APP_FACTORY = "langchain_domain_router.server:create_app_from_env"
"""The import string uvicorn workers build the app from."""
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve(
    config: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    settings: ServerSettings | None = None,
    log_level: str = "info",
    timeout_keep_alive: int = 75,
    allow_unauthenticated: bool = False,
) -> None:
    """Serve the router over HTTP until interrupted.

    The configuration and the classifier's model directory are checked here first, so a
    bad file or a missing model fails with a clear error before any worker starts.
    Workers build their app from ``DOMAIN_ROUTER_*`` variables, which is how every
    worker process gets the same configuration.

    Args:
        config: A router configuration file; ``None`` for the example configuration.
        host: The interface to bind (``0.0.0.0`` for every interface).
        port: The TCP port.
        workers: Worker processes; each loads its own copy of the classifier. With more
            than one, ``/metrics`` sums all workers (through ``PROMETHEUS_MULTIPROC_DIR``,
            a temporary directory unless already set).
        settings: Limits and the audit sink.
        log_level: uvicorn's log level.
        timeout_keep_alive: Seconds an idle keep-alive connection stays open. Longer
            than a load balancer's idle timeout (60 s on many), so the server never
            closes a connection just as a client sends on it (a lost request).
        allow_unauthenticated: Serve a non-loopback ``host`` without
            ``settings.api_keys`` (something in front of the server checks callers).

    Raises:
        ValueError: If the configuration file is missing or invalid, the model
            directory it names does not exist, ``settings.checkpointer`` is
            ``memory`` with several workers (each would keep its own threads), the
            key file is unreadable or empty, or ``host`` is not loopback and there
            are neither keys nor ``allow_unauthenticated``.
        ImportError: If ``settings.checkpointer`` needs an extra that is not installed.

    Example:
        ```python
        from langchain_domain_router.server import ServerSettings, serve

        settings = ServerSettings(api_keys="keys.txt")  # every interface: keys required
        serve("router.yaml", host="0.0.0.0", port=8000, workers=2, settings=settings)
        ```
    """
    import uvicorn

    router_config = RouterConfig.load(config)
    DomainClassifier.from_settings(router_config.classifier)  # checks the path; weights load later
    settings = settings or ServerSettings()
    check_exposure(host, keys_file=settings.api_keys, allow_unauthenticated=allow_unauthenticated)
    if settings.api_keys:
        read_keys(settings.api_keys)  # a bad file fails here, not in every worker
    if settings.checkpointer:
        spec = CheckpointerSpec.parse(settings.checkpointer)
        spec.check_installed()
        if spec.kind == "memory" and workers > 1:
            msg = (
                "--checkpointer memory keeps threads inside one process: use --workers 1, "
                "or sqlite:PATH / postgres:DSN, which every worker shares"
            )
            raise ValueError(msg)
    if config is not None:
        os.environ[CONFIG_ENV] = str(Path(config).resolve())
    else:
        os.environ.pop(CONFIG_ENV, None)
    os.environ.update(settings.to_env())
    metrics_dir = None
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # Each worker counts in its own process; a shared directory lets /metrics sum them.
        metrics_dir = tempfile.mkdtemp(prefix="domain-router-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            timeout_keep_alive=timeout_keep_alive,
            # Requests in flight at shutdown get as long as any request may take.
            timeout_graceful_shutdown=math.ceil(settings.request_timeout_s),
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)

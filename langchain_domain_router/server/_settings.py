"""Server limits and options, settable in code or from ``DOMAIN_ROUTER_*`` variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "DOMAIN_ROUTER_"
"""Environment variables ``DOMAIN_ROUTER_<FIELD>`` set ``ServerSettings`` fields."""


class ServerSettings(BaseModel):
    """Limits and options of the HTTP server.

    Example:
        ```python
        from langchain_domain_router.server import ServerSettings, create_app

        settings = ServerSettings(max_batch_size=16, audit_path="audit.jsonl")
        app = create_app("router.yaml", settings=settings)
        ```
    """

    model_config = ConfigDict(extra="forbid")

    max_input_chars: int = Field(default=8_000, gt=0)
    """Characters of text one input may hold (question plus conversation); more is 422."""
    max_batch_size: int = Field(default=32, gt=0)
    """Inputs one ``/batch`` request may hold; more is 422."""
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    """Bytes a request body may hold; more is 413."""
    max_json_depth: int = Field(default=32, gt=0)
    """Levels of JSON nesting a request body may hold; deeper is 422."""
    request_timeout_s: float = Field(default=120.0, gt=0)
    """Seconds one request may take, its wait for a slot included (counted once its body
    is read); an answer not started by then is 504, a slot not found by then 503."""
    max_concurrency: int = Field(default=64, gt=0)
    """Requests run at once per worker; more wait for a slot."""
    queue_timeout_s: float = Field(default=30.0, gt=0)
    """Seconds a request waits for a slot before it is 503 (with ``Retry-After``)."""
    coalesce_ms: float | None = Field(default=0.0, ge=0)
    """Dynamic batching of the classifier the config names when its ``coalesce_ms`` is
    unset: concurrent requests that arrive while a forward pass runs share the next one
    (0 adds no wait); ``None`` turns it off."""
    audit_path: str | None = None
    """A JSON-lines audit file (``"-"`` for standard output); ``None`` writes none."""
    audit_include_prompt: bool = False
    """Also write the question text to the audit trail."""
    checkpointer: str | None = None
    """Where multi-turn threads are kept: ``memory`` (this process), ``sqlite:PATH`` or
    ``postgres:DSN`` (``[sqlite]``/``[postgres]`` extras). ``None``: no threads; a
    request with a ``thread_id`` is then refused with 422."""
    drain_s: float = Field(default=0.0, ge=0)
    """Seconds between ``SIGTERM`` and closing the listening socket, during which
    ``/readyz`` answers 503 (so a balancer stops sending) and requests are still served;
    then the requests in flight finish (at most ``request_timeout_s``) and the process
    exits."""
    replica_name: str | None = None
    """The ``x-domain-router-replica`` header on every response; ``None``: the host
    name and process id (``<host>-<pid>``)."""

    api_keys: str | None = None
    """A file of bearer keys, one per line: every route but ``/healthz``, ``/readyz``
    and ``/metrics`` then needs ``Authorization: Bearer <key>`` (401 without). ``None``:
    no keys, and ``serve`` binds only loopback unless told ``allow_unauthenticated``."""

    @field_validator("checkpointer")
    @classmethod
    def _known_checkpointer(cls, value: str | None) -> str | None:
        if value is not None:
            from langchain_domain_router.server._checkpointer import CheckpointerSpec

            CheckpointerSpec.parse(value)
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read ``DOMAIN_ROUTER_<FIELD>`` variables (e.g. ``DOMAIN_ROUTER_MAX_BATCH_SIZE``).

        Args:
            environ: The variables (default: ``os.environ``).

        Returns:
            The settings; unset fields keep their defaults.
        """
        environ = os.environ if environ is None else environ
        values = {
            field: environ[ENV_PREFIX + field.upper()]
            for field in cls.model_fields
            if ENV_PREFIX + field.upper() in environ
        }
        return cls.model_validate(values)

    def to_env(self) -> dict[str, str]:
        """Return the ``DOMAIN_ROUTER_*`` variables that ``from_env`` reads back."""
        # Lower-case booleans: pydantic reads "true"/"false" back, and shells expect them.
        values = {
            field: str(value).lower() if isinstance(value, bool) else str(value)
            for field, value in self.model_dump(exclude_none=True).items()
        }
        return {ENV_PREFIX + field.upper(): value for field, value in values.items()}

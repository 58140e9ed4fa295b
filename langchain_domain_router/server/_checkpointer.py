"""``--checkpointer memory|sqlite:PATH|postgres:DSN``: where the server keeps threads."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

from langgraph.checkpoint.base import BaseCheckpointSaver

CheckpointerKind = Literal["memory", "sqlite", "postgres"]
_EXTRAS = {
    "sqlite": ("langgraph.checkpoint.sqlite.aio", "sqlite"),
    "postgres": ("langgraph.checkpoint.postgres.aio", "postgres"),
}


@dataclass(frozen=True)
class CheckpointerSpec:
    """A parsed ``--checkpointer`` value.

    Example:
        ```python
        CheckpointerSpec.parse("sqlite:/var/lib/router/threads.db")
        ```
    """

    kind: CheckpointerKind
    target: str = ""

    @classmethod
    def parse(cls, value: str) -> CheckpointerSpec:
        """Parse ``memory``, ``sqlite:PATH`` or ``postgres:DSN``.

        Raises:
            ValueError: For any other value, or a missing path or DSN.
        """
        kind, _, target = value.strip().partition(":")
        if kind == "memory" and not target:
            return cls("memory")
        if kind in ("sqlite", "postgres") and target.strip():
            return cls(kind, target.strip())  # type: ignore[arg-type]
        msg = (
            f"checkpointer {value.split(':')[0]!r}...: use 'memory', 'sqlite:PATH' or "
            "'postgres:DSN' (e.g. sqlite:threads.db, postgres:postgresql://host/db)"
        )
        raise ValueError(msg)

    def check_installed(self) -> None:
        """Fail early, naming the extra to install, when the saver's package is missing.

        Raises:
            ImportError: If the package for this kind is not installed.
        """
        if self.kind not in _EXTRAS:
            return
        module, extra = _EXTRAS[self.kind]
        try:
            importlib.import_module(module)
        except ImportError as exc:
            msg = (
                f"--checkpointer {self.kind}:... needs packages that are not installed "
                f'({exc.name}): pip install "langchain-domain-router[{extra}]"'
            )
            raise ImportError(msg) from exc

    @asynccontextmanager
    async def open(self) -> AsyncIterator[BaseCheckpointSaver]:
        """Open the saver (tables created when missing) for the app's lifetime."""
        self.check_installed()
        if self.kind == "memory":
            from langgraph.checkpoint.memory import InMemorySaver

            yield InMemorySaver()
        elif self.kind == "sqlite":
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            async with AsyncSqliteSaver.from_conn_string(self.target) as sqlite_saver:
                await sqlite_saver.setup()
                yield sqlite_saver
        else:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
            from psycopg.rows import dict_row
            from psycopg_pool import AsyncConnectionPool

            # A pool, not one connection: concurrent requests each get their own.
            kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
            async with AsyncConnectionPool(self.target, kwargs=kwargs, open=False) as pool:
                postgres_saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
                await postgres_saver.setup()
                yield postgres_saver

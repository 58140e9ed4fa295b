"""The machine and the process: usable CPUs, thread counts, one loaded model per directory."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (
    Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
)
MAX_INTRA_OP_THREADS = 4
"""A classifier this small stops scaling beyond a few threads; more only add contention."""


def _cgroup_quota(cgroup_v2: Path = _CGROUP_V2) -> float | None:
    """The container's CPU quota in cores, or ``None`` when there is none."""
    try:
        quota, period = cgroup_v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(_CGROUP_V1[0].read_text())
        period_us = int(_CGROUP_V1[1].read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cpus(cgroup_v2: Path = _CGROUP_V2) -> int:
    """The cores this process may really use: its CPU affinity, capped by a cgroup quota.

    ``os.cpu_count()`` counts the host's cores, which overstates a container limited by
    ``--cpus`` or a process pinned with ``taskset``.

    Args:
        cgroup_v2: The cgroup v2 ``cpu.max`` file (for tests).

    Returns:
        At least 1.

    Example:
        ```python
        available_cpus()  # 2 in a `docker run --cpus 2` container on a 64-core host
        ```
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_v2)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def default_threads(cpus: int | None = None) -> int:
    """Intra-op threads for one classifier: half the usable cores, 1 to 4.

    The other half is left to what runs beside the forward pass in a router process:
    the event loop, tokenisation, the expert calls' threads and the HTTP server. On two
    cores this is 1, which measured fastest and with the shortest tail when anything
    else ran (``docs/performance.md``).

    Args:
        cpus: The usable cores (default: ``available_cpus()``).

    Returns:
        The thread count.
    """
    cpus = available_cpus() if cpus is None else cpus
    return max(1, min(MAX_INTRA_OP_THREADS, cpus // 2))


def forward_passes(threads: int, cpus: int | None = None) -> int:
    """How many forward passes of ``threads`` intra-op threads may run at once.

    The usable cores divided among them, so concurrent passes (a large ``batch`` runs
    its chunks side by side) never ask for more threads than there are cores.

    Args:
        threads: Intra-op threads of one pass.
        cpus: The usable cores (default: ``available_cpus()``).

    Returns:
        At least 1.
    """
    cpus = available_cpus() if cpus is None else cpus
    return max(1, cpus // max(1, threads))


class ForwardSlots(threading.BoundedSemaphore):
    """Held by each forward pass of a loaded model: at most ``passes`` run at once.

    Example:
        ```python
        slots = ForwardSlots(forward_passes(threads=1))
        with slots:
            ...  # one forward pass
        ```
    """

    def __init__(self, passes: int = 1) -> None:
        super().__init__(passes)
        self.passes = passes


def directory_stamp(path: str | Path) -> tuple[int, ...]:
    """Modification times of a model directory's files (and its ``onnx/``), for cache keys."""
    root = Path(path)
    if not root.is_dir():
        return ()
    files = [*root.iterdir(), *(root / "onnx").glob("*")]
    return tuple(sorted(f.stat().st_mtime_ns for f in files if f.is_file()))


class ModelRegistry:
    """One loaded model per process for each model directory and loading option set.

    ``DomainClassifier.default()`` in one place and ``classifier: {model: default}`` in a
    router config in another then share weights, memory and the forward slots. A key
    includes the files' modification times, so a directory saved again loads afresh.

    Example:
        ```python
        registry = ModelRegistry()
        backend = registry.get(("dir", "onnx"), lambda: load_backend("dir", "onnx", threads=1))
        ```
    """

    def __init__(self) -> None:
        self._models: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[Any, ...], threading.Lock] = {}

    def get(self, key: tuple[Any, ...], load: Callable[[], T]) -> T:
        """Return the model loaded under ``key``, loading it with ``load`` the first time.

        Two threads asking for the same key load it once; different keys load in parallel.
        """
        with self._lock:
            if key in self._models:
                return self._models[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._models:
                loaded = load()
                with self._lock:
                    self._models[key] = loaded
            return self._models[key]

    def clear(self) -> None:
        """Forget every loaded model (classifiers that hold one keep it)."""
        with self._lock:
            self._models.clear()
            self._key_locks.clear()

    def __len__(self) -> int:
        return len(self._models)


MODELS = ModelRegistry()
"""The process-wide registry ``DomainClassifier`` loads through."""

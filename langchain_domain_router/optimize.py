"""Prepare a model for the fast ONNX Runtime backend.

Usage::

    python -m langchain_domain_router.optimize MODEL_DIR [--quantize int8]

then ``DomainClassifier.from_pretrained(MODEL_DIR, backend="onnx")``. Exporting needs
torch, ``onnx`` and ``onnxruntime`` (``pip install onnx onnxruntime``); running needs
only ``onnxruntime``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from langchain_domain_router._onnx import export_onnx

__all__ = ["export_onnx", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Export ``MODEL_DIR`` to ``MODEL_DIR/onnx/`` (the command-line entry point)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="a directory saved with save_pretrained")
    parser.add_argument("--quantize", choices=["int8"], help="also write an int8 graph")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    export_onnx(args.model_dir, quantize=args.quantize)


if __name__ == "__main__":
    main()

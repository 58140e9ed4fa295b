"""The ``domain-router`` command line: classify or route a question, or serve over HTTP.

Output is drawn with ``rich`` when it is installed (the ``[cli]`` extra) and as plain
text otherwise; ``--json`` prints JSON only. The arguments are checked before anything
heavy is imported, so a bad one fails at once. ``classify`` and ``route`` are quiet: one
``INFO`` line at most (the offline-expert notice); ``-v`` shows the package's debug log and
the model-loading output, ``-vv`` every library's. Sub-commands from
``langchain_domain_router.training`` (``train``, ``evaluate``) are mounted when that
module is importable: it registers them with ``register_cli(commands)``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_domain_router._quiet import PACKAGE_LOGGER
from langchain_domain_router._text import require_text

logger = logging.getLogger(__name__)

DEFAULT_QUESTION = "민법상 채권자대위권을 행사하기 위한 요건은 무엇인가요?"
MAX_SHOWN_CHARS = 80
"""Longer questions are cut (with an ellipsis) in the text output; ``--json`` keeps them."""
EXAMPLES = """\
examples:
  domain-router classify "부가가치세 신고 기한은 언제인가요?" --top-k 3
  domain-router route "민법상 소멸시효는 몇 년인가요?"
  domain-router route "함수의 미분계수를 구하는 방법을 설명해 주세요" --json

With no OPENAI_API_KEY, the offline expert answers with the routing decision.
"""
PLUGIN_MODULES = ("langchain_domain_router.training",)
"""Modules that may add sub-commands through ``register_cli(commands)``."""

BUILTIN_COMMANDS = ("classify", "route", "serve", "measure-quality")
Handler = Callable[[argparse.Namespace], int]


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")


def _shorten(question: str) -> str:
    """One line of at most ``MAX_SHOWN_CHARS`` characters, for the text output."""
    line = " ".join(question.split())
    if len(line) <= MAX_SHOWN_CHARS:
        return line
    return line[: MAX_SHOWN_CHARS - 1].rstrip() + "…"


@contextmanager
def _logging(verbose: int | None) -> Iterator[None]:
    """Show the package's INFO lines on stderr (``-v``: DEBUG; ``-vv``: every library's).

    ``None`` (a plugin command, which sets up its own logging) changes nothing. Levels and
    handlers are put back afterwards, so ``main`` can run in-process more than once.
    """
    if verbose is None:
        yield
        return
    package, root = logging.getLogger(PACKAGE_LOGGER), logging.getLogger()
    levels = package.level, root.level
    handler = logging.StreamHandler(sys.stderr)
    layout = "%(levelname)s %(name)s: %(message)s" if verbose else "%(levelname)s: %(message)s"
    handler.setFormatter(logging.Formatter(layout))
    # -vv: every library's records reach the root handler, the package's included, once.
    owner = root if verbose > 1 else package
    owner.addHandler(handler)
    package.setLevel(logging.DEBUG if verbose else logging.INFO)
    if verbose > 1:
        root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        owner.removeHandler(handler)
        package.setLevel(levels[0])
        root.setLevel(levels[1])


def _check_args(args: argparse.Namespace) -> None:
    """Reject bad arguments before the model (and torch) is imported and loaded."""
    args.question = require_text(args.question)
    config = getattr(args, "config", None)
    if config is not None and not Path(config).expanduser().is_file():
        msg = f"config file not found: {config!r}"
        raise ValueError(msg)


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        msg = f"must be at least 1, got {number}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _rich_console() -> Any:
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console()


# -- classify -------------------------------------------------------------------------


def _classifier(model: str, top_k: int) -> Any:
    from langchain_domain_router.classifier import DomainClassifier

    if model == "default":
        return DomainClassifier.default(top_k=top_k)
    return DomainClassifier.from_pretrained(model, top_k=top_k)


def _print_prediction(question: str, prediction: dict[str, Any]) -> None:
    console = _rich_console()
    question = _shorten(question)
    if console is None:
        _write(question)
        _write(
            f"domain: {prediction['label']} ({prediction['supercategory']}) "
            f"confidence {prediction['score']:.3f}"
        )
        for item in prediction["top_k"]:
            _write(f"  {item['label']:<45} {item['score']:.3f}")
        return
    from rich.table import Table

    table = Table(title=question, title_justify="left")
    table.add_column("domain")
    table.add_column("probability", justify="right")
    for item in prediction["top_k"]:
        table.add_row(item["label"], f"{item['score']:.3f}")
    console.print(table)
    console.print(
        f"[bold]{prediction['label']}[/bold] ({prediction['supercategory']}), "
        f"confidence [bold]{prediction['score']:.3f}[/bold], model {prediction['model_version']}"
    )


def _run_classify(args: argparse.Namespace) -> int:
    _check_args(args)
    prediction = _classifier(args.model, args.top_k).invoke(args.question)
    result = prediction.model_dump(mode="json")
    if args.json:
        _write(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        _print_prediction(args.question, result)
    return 0


# -- route ----------------------------------------------------------------------------


def _print_route(question: str, answer: str, routing: dict[str, Any]) -> None:
    offline = " (offline expert: no model reachable)" if routing.get("offline") else ""
    rows = [
        ("question", _shorten(question)),
        ("domain", f"{routing['domain']} ({routing['score']:.2f}, {routing['supercategory']})"),
        ("expert", f"{routing['expert']} [{routing['model']}] reason={routing['reason']}{offline}"),
        ("why", routing["explanation"]),
    ]
    console = _rich_console()
    if console is None:
        for name, value in rows:
            _write(f"{name:<9}: {value}")
        _write(f"\n{answer}")
        return
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    for name, value in rows:
        table.add_row(f"[bold]{name}[/bold]", escape(str(value)))
    console.print(table)
    title = "offline expert" if routing.get("offline") else f"answer from {routing['expert']}"
    console.print(Panel(escape(answer), title=title, title_align="left"))


def _run_route(args: argparse.Namespace) -> int:
    _check_args(args)
    from langchain_domain_router.router import DomainRouter

    classifier = None if args.model is None else _classifier(args.model, top_k=5)
    router = DomainRouter.from_config(args.config, classifier=classifier)
    answer = router.invoke(args.question)
    routing = answer.response_metadata["routing"]
    if args.json:
        result = {"answer": str(answer.text), "routing": routing}
        _write(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        _print_route(args.question, str(answer.text), routing)
    return 0


# -- serve ----------------------------------------------------------------------------

_SERVE_LIMITS = (  # ServerSettings fields, each a --flag-with-dashes
    ("max_input_chars", int, "characters one input may hold (question plus conversation)"),
    ("max_batch_size", int, "inputs one /batch request may hold"),
    ("max_body_bytes", int, "bytes a request body may hold (413 above)"),
    ("max_json_depth", int, "levels of JSON nesting a request body may hold (422 above)"),
    ("request_timeout_s", float, "seconds one request may take (504 above)"),
    ("max_concurrency", int, "requests served at once per worker"),
    ("queue_timeout_s", float, "seconds a request waits for a slot (503 above)"),
)


def _run_serve(args: argparse.Namespace) -> int:
    try:
        from langchain_domain_router.server import CheckpointerSpec, ServerSettings, serve
    except ImportError as exc:
        sys.stderr.write(f"domain-router: {exc}\n")
        return 2
    if args.checkpointer:  # its own message: pydantic's would echo the DSN, password included
        CheckpointerSpec.parse(args.checkpointer)
    limits = {name: getattr(args, name) for name, _, _ in _SERVE_LIMITS}
    settings = ServerSettings(
        audit_path=args.audit_log,
        audit_include_prompt=args.audit_include_prompt,
        checkpointer=args.checkpointer,
        **{name: value for name, value in limits.items() if value is not None},
    )
    try:
        serve(
            args.config,
            host=args.host,
            port=args.port,
            workers=args.workers,
            settings=settings,
            log_level=args.log_level,
            timeout_keep_alive=args.timeout_keep_alive,
        )
    except ImportError as exc:  # a --checkpointer extra that is not installed
        sys.stderr.write(f"domain-router: {exc}\n")
        return 2
    return 0


# -- export-onnx ----------------------------------------------------------------------


def _run_export_onnx(args: argparse.Namespace) -> int:
    from langchain_domain_router.classifier import default_model_path, export_model

    model = str(default_model_path()) if args.model == "default" else args.model
    meta = export_model(
        model,
        int8=args.int8,
        kmmlu=args.kmmlu,
        sample_size=args.sample,
        drop_float=args.drop_float,
    )
    _write(f"wrote {model}/onnx/ (default graph: {meta['default']})")
    check = meta.get("int8_check")
    if check:
        _write(
            f"int8 check on {check['questions']} KMMLU test questions: float32 "
            f"{check['float32_accuracy']:.2f}%, int8 {check['int8_accuracy']:.2f}% "
            f"({check['int8_minus_float32_points']:+.2f} points)"
        )
    return 0


# -- bench ----------------------------------------------------------------------------


def _run_bench(args: argparse.Namespace) -> int:
    from langchain_domain_router.bench import (
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
    _write(result.tables())
    for path in save_bench(result, args.out):
        _write(f"saved {path}")
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
    _write(quality_table(measured))
    _write(f"written to {measured.to_file(args.out)}")
    return 0


# -- parser ---------------------------------------------------------------------------


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
    for name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            logger.debug("no sub-commands from %s: %s", name, exc)
            continue
        register = getattr(module, "register_cli", None)
        if callable(register):
            register(commands)
            mounted.append(name)
    return mounted


def build_parser(*, plugins: bool = True) -> argparse.ArgumentParser:
    """Build the ``domain-router`` argument parser.

    Args:
        plugins: Mount the sub-commands of ``PLUGIN_MODULES`` too (importing them takes
            a while; a built-in command does not need them).
    """
    parser = argparse.ArgumentParser(
        prog="domain-router",
        description="Route Korean questions to KMMLU domain experts.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    classify = commands.add_parser("classify", help="label a question with its KMMLU domain")
    classify.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    classify.add_argument("--model", default="default", help="model directory or hub id")
    classify.add_argument("--top-k", type=_positive_int, default=5, help="how many domains to list")
    classify.set_defaults(handler=_run_classify)

    route = commands.add_parser("route", help="route a question through the graph and answer")
    route.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    route.add_argument("--config", help="router config (YAML/TOML/JSON); default: the example")
    route.add_argument("--model", help="classifier model directory (default: the config's)")
    route.set_defaults(handler=_run_route)
    for command in (classify, route):
        command.add_argument("--json", action="store_true", help="print JSON only")

    serve = commands.add_parser("serve", help="serve /router and /classify over HTTP")
    serve.add_argument("--config", help="router config (YAML/TOML/JSON); default: the example")
    serve.add_argument("--host", default="127.0.0.1", help="interface (0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--audit-log", help='JSON-lines audit file ("-" for stdout)')
    serve.add_argument(
        "--audit-include-prompt", action="store_true", help="write question text to the audit log"
    )
    serve.add_argument(
        "--checkpointer",
        help="keep multi-turn threads (clients send a thread_id): memory, sqlite:PATH "
        "or postgres:DSN (the [sqlite]/[postgres] extras)",
    )
    for name, kind, text in _SERVE_LIMITS:
        serve.add_argument("--" + name.replace("_", "-"), type=kind, help=text)
    serve.add_argument("--timeout-keep-alive", type=int, default=75, help="idle keep-alive seconds")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=_run_serve)
    for command in (classify, route, serve):
        command.add_argument(
            "-v", "--verbose", action="count", default=0, help="show the log (-vv: more)"
        )

    export = commands.add_parser(
        "export-onnx",
        help="write MODEL/onnx/ so the classifier runs with ONNX Runtime (needs torch)",
    )
    export.add_argument("--model", required=True, help='model directory ("default": embedded)')
    export.add_argument("--int8", action="store_true", help="also write an int8 graph (onnx)")
    export.add_argument(
        "--kmmlu",
        help="KMMLU folder: int8 becomes the default graph only if its accuracy on a test "
        "sample is within 0.5 points of float32",
    )
    export.add_argument("--sample", type=int, default=2000, help="test questions checked")
    export.add_argument(
        "--drop-float", action="store_true", help="keep only int8 when it became the default"
    )
    export.set_defaults(handler=_run_export_onnx)

    bench = commands.add_parser(
        "bench",
        help="measure the classifier on this machine: latency by batch size, throughput "
        "by concurrent callers; saves bench.json and bench.png",
    )
    bench.add_argument("--model", default="default", help="model directory or 'default'")
    bench.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])
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
    quality.add_argument("--split", default="test", choices=["train", "dev", "test"])
    quality.add_argument("--per-domain", type=int, default=20, help="questions per domain")
    quality.add_argument("--concurrency", type=int, default=4, help="parallel calls per model")
    quality.add_argument("--out", required=True, help="where to write the measured config")
    quality.set_defaults(handler=_run_measure_quality)

    if plugins:
        register_plugins(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 on bad input or configuration.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    builtin = bool(argv) and argv[0] in BUILTIN_COMMANDS
    args = build_parser(plugins=not builtin).parse_args(argv)
    handler: Handler = args.handler
    try:
        with _logging(getattr(args, "verbose", None)):
            return handler(args)
    except (ValueError, TypeError) as exc:
        sys.stderr.write(f"domain-router: error: {exc}\n")
        return 2

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
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_domain_router._text import require_text
from langchain_domain_router.cli._fit import add_fit_command
from langchain_domain_router.cli._output import print_prediction, print_route, write
from langchain_domain_router.cli._tools import add_tool_commands, register_plugins

PACKAGE_LOGGER = __name__.partition(".")[0]
"""The package's top logger: ``-v`` sets it to ``DEBUG``, which also un-hushes model loading."""

EXAMPLES = """\
examples:
  domain-router classify "부가가치세 신고 기한은 언제인가요?" --top-k 3
  domain-router route "민법상 소멸시효는 몇 년인가요?"
  domain-router route "함수의 미분계수를 구하는 방법을 설명해 주세요" --json
  domain-router fit-domains routes.yaml --output-dir my-router

With no OPENAI_API_KEY, the offline expert answers with the routing decision.
"""
BUILTIN_COMMANDS = ("classify", "route", "serve", "init", "measure-quality", "fit-domains")
Handler = Callable[[argparse.Namespace], int]


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


# -- classify -------------------------------------------------------------------------


def _classifier(model: str, top_k: int) -> Any:
    from langchain_domain_router.classifier import ClassifierSettings, DomainClassifier

    return DomainClassifier.from_settings(ClassifierSettings(model=model, top_k=top_k))


def _run_classify(args: argparse.Namespace) -> int:
    _check_args(args)
    prediction = _classifier(args.model, args.top_k).invoke(args.question)
    result = prediction.model_dump(mode="json")
    if args.json:
        write(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print_prediction(args.question, result)
    return 0


# -- route ----------------------------------------------------------------------------


def _run_route(args: argparse.Namespace) -> int:
    _check_args(args)
    from langchain_domain_router.router import DomainRouter

    classifier = None if args.model is None else _classifier(args.model, top_k=5)
    router = DomainRouter.from_config(args.config, classifier=classifier)
    answer = router.invoke(args.question)
    routing = answer.response_metadata["routing"]
    if args.json:
        result = {"answer": str(answer.text), "routing": routing}
        write(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print_route(args.question, str(answer.text), routing)
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
    ("drain_s", float, "seconds /readyz answers 503 after SIGTERM before the server stops"),
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
        api_keys=args.api_keys,
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
            allow_unauthenticated=args.allow_unauthenticated,
        )
    except ImportError as exc:  # a --checkpointer extra that is not installed
        sys.stderr.write(f"domain-router: {exc}\n")
        return 2
    return 0


# -- parser ---------------------------------------------------------------------------


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
    classify.add_argument("question", help="the question, quoted")
    classify.add_argument("--model", default="default", help="model directory or hub id")
    classify.add_argument("--top-k", type=_positive_int, default=5, help="how many domains to list")
    classify.set_defaults(handler=_run_classify)

    route = commands.add_parser("route", help="route a question through the graph and answer")
    route.add_argument("question", help="the question, quoted")
    route.add_argument("--config", help="router config (YAML/TOML/JSON); default: the example")
    route.add_argument("--model", help="classifier model directory (default: the config's)")
    route.set_defaults(handler=_run_route)
    for command in (classify, route):
        command.add_argument("--json", action="store_true", help="print JSON only")

    serve = commands.add_parser(
        "serve", help="serve /router, /classify and /v1/chat/completions over HTTP"
    )
    serve.add_argument("--config", help="router config (YAML/TOML/JSON); default: the example")
    serve.add_argument("--host", default="127.0.0.1", help="interface (0.0.0.0 for all)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
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
    serve.add_argument(
        "--api-keys",
        default=os.environ.get("DOMAIN_ROUTER_API_KEYS"),
        metavar="FILE",
        help="bearer keys, one per line, required on every route but the probes "
        "(default: $DOMAIN_ROUTER_API_KEYS)",
    )
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve a non-loopback --host without --api-keys",
    )
    for name, kind, text in _SERVE_LIMITS:
        serve.add_argument("--" + name.replace("_", "-"), type=kind, help=text)
    serve.add_argument("--timeout-keep-alive", type=int, default=75, help="idle keep-alive seconds")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's log level (info: one access line per request)",
    )
    serve.set_defaults(handler=_run_serve)
    fit = add_fit_command(commands)
    for command in (classify, route, serve, fit):
        command.add_argument(
            "-v", "--verbose", action="count", default=0, help="show the log (-vv: more)"
        )

    add_tool_commands(commands)
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
    parser = build_parser(plugins=not builtin)
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "takes_any", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    handler: Handler = args.handler
    try:
        with _logging(getattr(args, "verbose", None)):
            return handler(args)
    except (ValueError, TypeError) as exc:
        sys.stderr.write(f"domain-router: error: {exc}\n")
        return 2

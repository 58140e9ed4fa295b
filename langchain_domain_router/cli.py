"""The ``domain-router`` command line: classify or route a question."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

DEFAULT_QUESTION = "민법상 채권자대위권을 행사하기 위한 요건은 무엇인가요?"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="domain-router", description="Route Korean questions to KMMLU domain experts."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    classify = commands.add_parser("classify", help="label a question with its KMMLU domain")
    classify.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    classify.add_argument("--model", default="default", help="model directory or hub id")
    route = commands.add_parser("route", help="route a question through the graph and answer")
    route.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    route.add_argument("--config", help="router config (YAML/TOML/JSON); default: the example")
    for command in (classify, route):
        command.add_argument("--json", action="store_true", help="print JSON only")
    return parser


def _classify(args: argparse.Namespace) -> dict:
    from langchain_domain_router.classifier import DomainClassifier

    classifier = (
        DomainClassifier.default()
        if args.model == "default"
        else DomainClassifier.from_pretrained(args.model)
    )
    return classifier.invoke(args.question).model_dump(mode="json")


def _route(args: argparse.Namespace) -> dict:
    from langchain_domain_router.router import DomainRouter

    answer = DomainRouter.from_config(args.config).invoke(args.question)
    return {"answer": str(answer.text), "routing": answer.response_metadata["routing"]}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 on bad input or configuration.
    """
    args = _parser().parse_args(argv)
    try:
        result = _classify(args) if args.command == "classify" else _route(args)
    except (ValueError, TypeError) as exc:
        sys.stderr.write(f"domain-router: error: {exc}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    elif args.command == "classify":
        sys.stdout.write(f"{args.question}\n")
        for item in result["top_k"]:
            sys.stdout.write(f"  {item['label']:<45} {item['score']:.3f}\n")
    else:
        routing = result["routing"]
        sys.stdout.write(
            f"question : {args.question}\n"
            f"domain   : {routing['domain']} ({routing['score']:.2f}, {routing['supercategory']})\n"
            f"expert   : {routing['expert']} [{routing['model']}] reason={routing['reason']}\n"
            f"why      : {routing['explanation']}\n\n{result['answer']}\n"
        )
    return 0

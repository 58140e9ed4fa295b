"""``train``: data → tokenizer → teacher → fine-tuning → calibration → model directory."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_domain_router.classifier import char_cap
from langchain_domain_router.taxonomy import KMMLU_DOMAINS
from langchain_domain_router.training._data import DataError, Example
from langchain_domain_router.training._finetune import EncodedPool, LoopOptions, encode_pool
from langchain_domain_router.training._model import ModelSize
from langchain_domain_router.training._splits import DataBundle, DataSources, load_bundle

logger = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    """Everything ``train`` needs besides the data.

    Example:
        ```python
        TrainOptions(output_dir="runs/default", size=ModelSize(layers=4, hidden=256))
        ```
    """

    output_dir: str
    """Run folder: ``tokenizer/``, ``checkpoint/``, ``history.json`` and ``model/``."""
    base: str | None = None
    """A pretrained checkpoint to fine-tune (hub name or folder); ``None`` trains from scratch."""
    size: ModelSize = field(default_factory=ModelSize)
    """The from-scratch network shape."""
    vocab_size: int = 32000
    """WordPiece vocabulary size (from scratch only)."""
    max_length: int = 64
    """Token cap, in training and at inference."""
    loop: LoopOptions = field(default_factory=LoopOptions)
    """Loop knobs."""
    teacher_folds: int = 3
    """Cross-fitting folds of the TF-IDF teacher (used when ``loop.distill > 0``)."""
    model_version: str = "kmmlu-electra-small"
    """Stored in ``config.domain_router.model_version``."""
    threads: int = 2
    """CPU threads for torch."""
    device: str = "auto"
    """Where the network trains: ``auto`` (CUDA where there is one), ``cpu`` or ``cuda``."""
    ngram_branch_dropout: float | None = None
    """Set the model's ``ngram_branch_dropout`` for this run (models with the branch)."""
    warm_start: bool = True
    """Start a from-scratch model from token-subject statistics (see ``warm_start``)."""


def subject_labels() -> list[str]:
    """The 45 KMMLU subjects, in the order every trained model's ``id2label`` uses."""
    return list(KMMLU_DOMAINS)


def tokenizer_text(bundle: DataBundle) -> list[str]:
    """All training text: questions, their options and the out-of-domain rows."""
    texts = [r.text for r in bundle.train]
    texts += [o for r in bundle.train for o in r.options]
    return texts + bundle.ood_train


def _get_tokenizer(options: TrainOptions, bundle: DataBundle, run: Path) -> Any:
    from transformers import AutoTokenizer

    from langchain_domain_router.training._tokenizer import train_wordpiece

    folder = run / "tokenizer"
    if options.base:
        return AutoTokenizer.from_pretrained(options.base)
    if (folder / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(folder)
    tok = train_wordpiece(
        tokenizer_text(bundle), vocab_size=options.vocab_size, max_length=options.max_length
    )
    tok.save_pretrained(folder)
    return tok


def _teacher_targets(
    rows: list[Example], label2id: dict[str, int], folds: int, seed: int, run: Path
) -> Any:
    import numpy as np

    from langchain_domain_router.classifier import probabilities
    from langchain_domain_router.training._calibration import fit_temperature
    from langchain_domain_router.training._teacher import teacher_scores

    cache = run / "teacher_scores.npy"
    y = np.array([label2id[r.label] for r in rows])
    if cache.is_file():
        scores = np.load(cache)
    else:
        started = time.time()
        scores = teacher_scores([r.text for r in rows], y, len(label2id), folds=folds, seed=seed)
        np.save(cache, scores)
        logger.info("teacher cross-fitted in %.0fs", time.time() - started)
    # Out-of-fold scores are honest, so fitting their scale by NLL gives calibrated targets.
    temperature = fit_temperature(scores, y)
    accuracy = float((scores.argmax(1) == y).mean())
    logger.info("teacher out-of-fold accuracy %.4f, temperature %.3f", accuracy, temperature)
    targets = probabilities(scores, temperature).astype(np.float32)
    # The teacher is far weaker on how users ask (about 0.62 on synthetic validation rows,
    # 0.74 on KMMLU ones), so rows other than KMMLU keep their own label as the soft target.
    own = np.array([not r.is_kmmlu for r in rows])
    targets[own] = np.eye(len(label2id), dtype=np.float32)[y[own]]
    return targets


def _validation_fn(
    tokenizer: Any, rows: list[Example], label2id: dict[str, int], max_length: int
) -> Any:
    import numpy as np

    from langchain_domain_router.training._calibration import nll
    from langchain_domain_router.training._inference import batched_logits
    from langchain_domain_router.training._metrics import classification_metrics

    texts = [r.text for r in rows]
    y = np.array([label2id[r.label] for r in rows])

    def evaluate(model: Any) -> dict[str, float]:
        logits = batched_logits(model, tokenizer, texts, max_length=max_length)
        metrics = classification_metrics(logits, y, len(label2id))
        return {
            "val_loss": nll(logits, y),
            "val_accuracy": metrics["accuracy"],
            "val_macro_f1": metrics["macro_f1"],
        }

    return evaluate


def train(sources: DataSources, options: TrainOptions) -> Path:
    """Train, calibrate and save a classifier directory; resume an interrupted run.

    Args:
        sources: Where the data lives.
        options: Model and loop settings.

    Returns:
        The saved model directory (``output_dir/model``), loadable with
        ``AutoModelForSequenceClassification`` and ``AutoTokenizer``.

    Raises:
        DataError: When there is no training or validation data.

    Example:
        ```python
        from langchain_domain_router.training import DataSources, TrainOptions, train

        train(DataSources.shared("../shared/data"), TrainOptions(output_dir="runs/default"))
        ```
    """
    import torch

    from langchain_domain_router.training._finetune import run_loop
    from langchain_domain_router.training._model import (
        build_scratch_model,
        load_base_model,
        training_device,
        warm_start,
    )
    from langchain_domain_router.training._ngram_prefit import prefit_ngrams

    torch.set_num_threads(options.threads)
    torch.manual_seed(options.loop.seed)
    run = Path(options.output_dir)
    run.mkdir(parents=True, exist_ok=True)
    started = time.time()
    bundle = load_bundle(sources, seed=options.loop.seed, with_test=False)
    if not bundle.train or not bundle.validation:
        msg = "no training or validation rows: give --kmmlu, --synthetic, --data or --dataset"
        raise DataError(msg)
    labels = subject_labels()
    label2id = {label: i for i, label in enumerate(labels)}
    tokenizer = _get_tokenizer(options, bundle, run)
    model: Any
    if options.base:
        model = load_base_model(options.base, labels)
    else:
        model = build_scratch_model(
            labels, len(tokenizer), options.size, options.max_length, seed=options.loop.seed
        )
    if char_cap(model.config) is not None:
        msg = (
            f"{options.base} reads characters (a fitted n-gram branch): fine-tune the model "
            "it was built on, then run fit-ngrams again"
        )
        raise DataError(msg)
    if options.ngram_branch_dropout is not None:
        model.config.ngram_branch_dropout = options.ngram_branch_dropout
    positions = getattr(model.config, "max_position_embeddings", options.max_length)
    if options.max_length > positions:
        msg = f"--max-length {options.max_length} exceeds the model's {positions} positions"
        raise DataError(msg)
    model.to(training_device(options.device))
    pool: EncodedPool = encode_pool(
        tokenizer, bundle.train, bundle.ood_train, label2id, options.max_length
    )
    if options.warm_start and not options.base:
        warm_start(model, pool.question_ids, pool.labels)
    if options.loop.distill > 0:
        pool.teacher = _teacher_targets(
            bundle.train, label2id, options.teacher_folds, options.loop.seed, run
        )
    logger.info(
        "%d training rows, %d OOD rows, %d validation rows; %d parameters",
        len(bundle.train),
        len(pool.ood_ids),
        len(bundle.validation),
        model.num_parameters(),
    )
    if not (run / "checkpoint" / "state.pt").is_file():  # a resumed run restores the branch
        prefit_ngrams(model, pool, options.loop)
    evaluate_epoch = _validation_fn(tokenizer, bundle.validation, label2id, options.max_length)
    history = run_loop(model, pool, options.loop, run / "checkpoint", evaluate_epoch)
    wall = time.time() - started
    (run / "history.json").write_text(json.dumps(history, indent=1))
    from langchain_domain_router.training._recalibrate import calibrate_and_save

    return calibrate_and_save(
        model.to("cpu"),
        tokenizer,
        bundle,
        options.max_length,
        run / "model",
        model_version=options.model_version,
        extra={"train_wall_seconds": round(wall), "train_options": _jsonable(options)},
    )


def _jsonable(options: TrainOptions) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(options), default=str))

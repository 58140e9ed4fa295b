"""The fine-tuning loop: balanced epochs, distillation, outlier exposure, checkpoints."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_domain_router.training._data import Example

if TYPE_CHECKING:
    import numpy as np
    import torch

logger = logging.getLogger(__name__)

_Item = TypeVar("_Item")

OOD_LABEL = -1


@dataclass
class LoopOptions:
    """Knobs of the fine-tuning loop.

    Example:
        ```python
        LoopOptions(epochs=5, batch_size=64, learning_rate=1e-3)
        ```
    """

    epochs: int = 6
    """Passes over the (balanced) training plan."""
    batch_size: int = 64
    """Rows per optimiser step."""
    learning_rate: float = 1e-3
    """Peak learning rate (linear warm-up, then linear decay)."""
    fresh_learning_rate: float | None = None
    """Peak learning rate of the parts a pretrained base lacks (the head and the n-gram
    branch, which start from random); ``None``: ``learning_rate``."""
    warmup: float = 0.06
    """Share of steps spent warming up."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    class_cap: int = 3000
    """Most rows of one subject drawn per epoch (a fresh draw each epoch); 0: no cap."""
    synthetic_repeat: int = 5
    """How often each non-KMMLU training row appears per epoch."""
    option_prob: float = 0.15
    """Chance that a KMMLU row is shown with its answer options appended (training only)."""
    distill: float = 0.7
    """Weight of the teacher's soft targets against the hard labels (0 turns it off)."""
    ood_weight: float = 0.5
    """Weight of the outlier-exposure loss (uniform target on out-of-domain text)."""
    ood_per_epoch: int = 6000
    """Out-of-domain rows drawn per epoch."""
    ngram_prefit_epochs: int = 0
    """Epochs of training the n-gram branch alone before the joint loop (a model with an
    n-gram branch only). A fresh branch beside a pretrained encoder otherwise stays small:
    the encoder fits the batch first and leaves it little gradient."""
    ngram_prefit_learning_rate: float = 1e-2
    """Learning rate of that pre-fit."""
    checkpoint_every: int = 400
    """Steps between checkpoints."""
    seed: int = 0
    """Seed of sampling, shuffling and dropout."""


@dataclass
class EncodedPool:
    """Training rows as token ids, with their views, labels and teacher targets."""

    question_ids: list[list[int]]
    option_ids: list[list[int] | None]
    labels: list[int]
    is_kmmlu: list[bool]
    teacher: np.ndarray | None = None
    ood_ids: list[list[int]] = field(default_factory=list)
    pad_id: int = 0


def encode_pool(
    tokenizer: Any,
    rows: Sequence[Example],
    ood_texts: Sequence[str],
    label2id: dict[str, int],
    max_length: int,
) -> EncodedPool:
    """Tokenise training rows once, with and without their answer options."""

    def ids(texts: list[str]) -> list[list[int]]:
        if not texts:  # the fast tokenizer fails on an empty batch (no KMMLU rows, no OOD)
            return []
        return list(tokenizer(texts, truncation=True, max_length=max_length)["input_ids"])

    with_options = [i for i, r in enumerate(rows) if r.options]
    option_ids: list[list[int] | None] = [None] * len(rows)
    for i, enc in zip(
        with_options,
        ids([rows[i].text + " " + " / ".join(rows[i].options) for i in with_options]),
        strict=True,
    ):
        option_ids[i] = enc
    return EncodedPool(
        question_ids=ids([r.text for r in rows]),
        option_ids=option_ids,
        labels=[label2id[r.label] for r in rows],
        is_kmmlu=[r.is_kmmlu for r in rows],
        ood_ids=ids(list(ood_texts)),
        pad_id=tokenizer.pad_token_id or 0,
    )


Batch = list[tuple[int, bool]]


def epoch_plan(pool: EncodedPool, options: LoopOptions, epoch: int) -> list[Batch]:
    """Return the epoch's batches as ``(row, with_options)`` pairs.

    OOD rows are numbered past the labelled rows. KMMLU rows are capped per subject with a
    fresh draw each epoch, other rows repeated; each row's view (with or without answer
    options) is drawn first, so that batches can be cut from length-sorted chunks of the
    sequences actually fed, which keeps padding (most of the cost on CPU) small.
    """
    rng = random.Random(options.seed * 1000 + epoch)  # noqa: S311 - reproducible sampling
    by_label: dict[int, list[int]] = {}
    for i, (label, kmmlu) in enumerate(zip(pool.labels, pool.is_kmmlu, strict=True)):
        if kmmlu:
            by_label.setdefault(label, []).append(i)
    rows: list[int] = []
    for label in sorted(by_label):
        idx = by_label[label]
        cap = options.class_cap or len(idx)
        rows += rng.sample(idx, min(cap, len(idx)))
    rows += [i for i, k in enumerate(pool.is_kmmlu) if not k] * options.synthetic_repeat
    n = len(pool.labels)
    if pool.ood_ids and options.ood_per_epoch:
        k = min(options.ood_per_epoch, len(pool.ood_ids))
        rows += [n + j for j in rng.sample(range(len(pool.ood_ids)), k)]
    rng.shuffle(rows)
    views = [(i, i < n and rng.random() < options.option_prob) for i in rows]
    batches = length_sorted_batches(views, lambda v: len(_sequence(pool, *v)), options.batch_size)
    rng.shuffle(batches)
    return batches


def length_sorted_batches(
    items: Sequence[_Item], length: Callable[[_Item], int], batch_size: int
) -> list[list[_Item]]:
    """Cut ``items`` into batches from length-sorted chunks of 50 batches each.

    Rows of similar length share a batch, which keeps padding (most of the cost on CPU)
    small, while the chunks keep the shuffled order's mix across the epoch.
    """
    chunk = batch_size * 50
    batches: list[list[_Item]] = []
    for start in range(0, len(items), chunk):
        part = sorted(items[start : start + chunk], key=length)
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    return batches


def _sequence(pool: EncodedPool, i: int, with_options: bool) -> list[int]:
    n = len(pool.labels)
    if i >= n:
        return pool.ood_ids[i - n]
    alt = pool.option_ids[i]
    return alt if with_options and alt is not None else pool.question_ids[i]


def class_weights(pool: EncodedPool, options: LoopOptions, num_labels: int) -> torch.Tensor:
    """Inverse-square-root class weights from one epoch's expected counts (mean 1)."""
    import torch

    counts = torch.zeros(num_labels)
    kmmlu_counts = torch.zeros(num_labels)
    for label, kmmlu in zip(pool.labels, pool.is_kmmlu, strict=True):
        if kmmlu:
            kmmlu_counts[label] += 1
        else:
            counts[label] += options.synthetic_repeat
    if options.class_cap:
        kmmlu_counts = kmmlu_counts.clamp(max=options.class_cap)
    counts += kmmlu_counts
    weights = (counts.sum() / (num_labels * counts.clamp(min=1))) ** 0.5
    return weights / weights.mean()


def _collate(pool: EncodedPool, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    import torch

    n = len(pool.labels)
    seqs = [_sequence(pool, i, opt) for i, opt in batch]
    labels = [pool.labels[i] if i < n else OOD_LABEL for i, _ in batch]
    return (*padded(seqs, pool.pad_id), torch.tensor(labels))


def padded(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(input_ids, attention_mask)`` for token id lists, padded with ``pad_id``.

    The mask comes from the lengths, not from the ids: a tokenizer may use id 0 for a real
    token (XLM-R's ``<s>``).
    """
    import torch

    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s)
        mask[r, : len(s)] = 1
    return ids, mask


def batch_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
    teacher: torch.Tensor | None,
    options: LoopOptions,
) -> torch.Tensor:
    """Weighted hard-label CE, blended with KL to the teacher, plus outlier exposure.

    Out-of-domain rows (label ``-1``) are pushed towards the uniform distribution, which is
    what makes a low top-class confidence mean "none of the subjects".
    """
    import torch.nn.functional as F  # noqa: N812

    log_p = F.log_softmax(logits, dim=-1)
    ind = labels >= 0
    total = logits.new_zeros(())
    if ind.any():
        y = labels[ind]
        w = weights[y]
        hard = -log_p[ind].gather(1, y[:, None]).squeeze(1)
        per_row = hard
        if teacher is not None and options.distill > 0:
            t = teacher[ind]
            soft = (t * (t.clamp_min(1e-8).log() - log_p[ind])).sum(-1)
            per_row = (1 - options.distill) * hard + options.distill * soft
        total = total + (w * per_row).sum()
    if (~ind).any():
        uniform = -log_p[~ind].mean(-1) - math.log(logits.shape[-1])
        total = total + options.ood_weight * uniform.sum()
    return total / len(labels)


FRESH_PREFIXES = ("classifier", "ngram_")
"""Parameter names that a pretrained base never supplies."""


def parameter_groups(model: Any, options: LoopOptions) -> list[dict[str, Any]]:
    """Split parameters into the base's and the fresh ones, each with its peak rate."""
    fresh_lr = options.fresh_learning_rate or options.learning_rate
    groups: dict[bool, list[Any]] = {False: [], True: []}
    for name, param in model.named_parameters():
        groups[name.startswith(FRESH_PREFIXES)].append(param)
    return [
        {"params": params, "lr": fresh_lr if fresh else options.learning_rate}
        for fresh, params in groups.items()
        if params
    ]


def run_loop(
    model: Any,
    pool: EncodedPool,
    options: LoopOptions,
    checkpoint_dir: Path,
    evaluate_epoch: Any,
) -> list[dict[str, float]]:
    """Train ``model`` in place, resuming from ``checkpoint_dir`` when it holds a checkpoint.

    Args:
        model: The classifier.
        pool: The encoded training rows.
        options: Loop knobs.
        checkpoint_dir: Where ``state.pt`` and ``history.json`` are written.
        evaluate_epoch: ``f(model) -> dict`` of validation metrics, called after each epoch.

    Returns:
        One dict per epoch: ``epoch``, ``train_loss``, the validation metrics, ``seconds``.
    """
    import torch
    from tqdm.auto import tqdm

    num_labels = model.config.num_labels
    device = next(model.parameters()).device
    weights = class_weights(pool, options, num_labels).to(device)
    teacher = torch.from_numpy(pool.teacher).float() if pool.teacher is not None else None
    plans = [epoch_plan(pool, options, e) for e in range(options.epochs)]
    total_steps = sum(map(len, plans))
    optimizer = torch.optim.AdamW(
        parameter_groups(model, options), weight_decay=options.weight_decay
    )
    warm = max(1, int(options.warmup * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min((s + 1) / warm, max(0.0, (total_steps - s) / max(1, total_steps - warm))),
    )
    state_file = checkpoint_dir / "state.pt"
    start_epoch, start_batch, history, loss_sum = 0, 0, [], 0.0
    if state_file.is_file():
        # Tensors, numbers, strings and containers only: loading never runs pickled code.
        state = torch.load(state_file, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, start_batch = state["epoch"], state["batch"]
        history, loss_sum = state["history"], state["loss_sum"]
        torch.set_rng_state(state["torch_rng"])
        logger.info("resumed at epoch %d batch %d", start_epoch + 1, start_batch)

    def save(epoch: int, batch: int) -> None:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "batch": batch,
                "history": history,
                "loss_sum": loss_sum,
                "torch_rng": torch.get_rng_state(),
            },
            tmp,
        )
        tmp.replace(state_file)  # atomic: a kill mid-save never leaves a broken checkpoint

    n = len(pool.labels)
    model.train()
    for epoch in range(start_epoch, options.epochs):
        started = time.time()
        plan = plans[epoch]
        bar = tqdm(
            plan, desc=f"epoch {epoch + 1}/{options.epochs}", initial=start_batch, mininterval=20
        )
        for b, batch in enumerate(plan):
            if b < start_batch:
                continue  # the plan is deterministic, so resuming skips the batches done
            ids, mask, labels = _collate(pool, batch)
            soft = None
            if teacher is not None:
                # OOD rows get any teacher row: batch_loss masks them out of the KL term.
                soft = teacher[torch.tensor([min(i, n - 1) for i, _ in batch])].to(device)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            loss = batch_loss(logits, labels.to(device), weights, soft, options)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.item()
            bar.update(1)
            if (b + 1) % 50 == 0:
                bar.set_postfix(loss=f"{loss_sum / (b + 1):.4f}")
            if (b + 1) % options.checkpoint_every == 0:
                save(epoch, b + 1)
        bar.close()
        metrics = {"epoch": epoch + 1, "train_loss": loss_sum / max(1, len(plan))}
        metrics.update(evaluate_epoch(model))
        metrics["seconds"] = time.time() - started
        history.append(metrics)
        logger.info("epoch %s", json.dumps(metrics))
        start_batch, loss_sum = 0, 0.0
        save(epoch + 1, 0)
    return history

"""Fit temperature and threshold on validation data and save the model directory."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from langchain_domain_router.classifier import Calibration, probabilities
from langchain_domain_router.training._splits import DataBundle

logger = logging.getLogger(__name__)


def calibrate_and_save(
    model: Any,
    tokenizer: Any,
    bundle: DataBundle,
    max_length: int,
    folder: Path,
    *,
    model_version: str,
    extra: dict[str, Any] | None = None,
    half: bool = True,
) -> Path:
    """Fit the temperature and ``min_confidence`` on validation rows, then save.

    Args:
        model: The trained classifier.
        tokenizer: Its tokenizer.
        bundle: The splits (``validation`` and ``ood_validation`` are used).
        max_length: The token cap used in training.
        folder: Where to write the Hugging Face directory.
        model_version: Stored in the checkpoint's ``Calibration``.
        extra: More JSON written beside the model as ``training_info.json``.
        half: Store weights in fp16 (the runtime loads them as fp32).

    Returns:
        ``folder``.
    """
    import numpy as np

    from langchain_domain_router.training._calibration import (
        choose_min_confidence,
        fit_temperature,
    )
    from langchain_domain_router.training._inference import batched_logits

    label2id = model.config.label2id
    y = np.array([label2id[r.label] for r in bundle.validation])
    logits = batched_logits(
        model, tokenizer, [r.text for r in bundle.validation], max_length=max_length
    )
    temperature = fit_temperature(logits, y)
    in_conf = probabilities(logits, temperature).max(1)
    min_confidence = 0.0
    if bundle.ood_validation:
        ood_logits = batched_logits(model, tokenizer, bundle.ood_validation, max_length=max_length)
        min_confidence = choose_min_confidence(
            in_conf, probabilities(ood_logits, temperature).max(1)
        )
    calibration = Calibration(
        temperature=round(temperature, 4),
        min_confidence=round(min_confidence, 4),
        min_margin=0.0,
        model_version=model_version,
        max_length=max_length,
    )
    calibration.write(model.config)
    logger.info("calibration %s", calibration)
    folder.mkdir(parents=True, exist_ok=True)
    to_save = model.half() if half else model
    to_save.save_pretrained(folder)
    model.float()
    # fp16 on disk halves the size, but transformers loads a model in its config's dtype:
    # declaring float32 makes every plain from_pretrained run it in fp32 on CPU.
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["dtype"] = "float32"
    config_file.write_text(
        json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(folder)
    if extra is not None:
        (folder / "training_info.json").write_text(json.dumps(extra, indent=1))
    return folder

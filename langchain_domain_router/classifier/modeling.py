"""The project's own sequence classifier: an encoder plus a hashed n-gram branch.

Importing this module registers the model type ``domain-router-encoder`` with
``AutoConfig`` and ``AutoModelForSequenceClassification``, so a saved checkpoint loads with
the usual ``from_pretrained`` calls and no ``trust_remote_code``. The package's loaders
import it lazily; it pulls in ``torch`` and ``transformers``.

The encoder is either a BERT/ELECTRA-discriminator stack (multilingual-e5-small's layers,
see ``training.convert_e5``) whose token states are mean-pooled, as e5 was trained, or any
registered sequence classifier given as ``base_classifier`` (a trained ELECTRA, say). Beside
it sits a fastText-style branch: n-grams of tokens (``input_ids``), of lower-cased
characters (``char_ids``, see ``langchain_domain_router.classifier._chars``), or of both, are hashed
into ``ngram_buckets`` rows of an embedding table, summed with TF-IDF-style weights (each
n-gram's ``ngram_idf``, each source's bag L2-normalised), and mapped to the labels. Both
branches' logits are summed.

Both encoder shapes expose their mean-pooled last hidden state (``pooled_features``), which
every forward pass returns beside the logits. A model ``domain-router fit-domains`` writes
adds an own-domain head over those features (``own_labels``): one encoder pass then feeds
the own head and, when the base taxonomy is kept (``base_labels``), the base's heads too.
The n-grams are hashed inside the graph (integer multiply-add and
modulo), so the ONNX export carries the whole computation; the only per-question work
outside it is reading the code points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertModel,
    PreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from langchain_domain_router.classifier._chars import CHAR_IDS
from langchain_domain_router.classifier._encoder_config import MODEL_TYPE, DomainEncoderConfig

# Odd multipliers for the rolling hash; the modulus keeps every product inside int64.
_HASH_MULTIPLIER = 1_000_003
_HASH_MODULUS = 2_147_483_647
TOKEN_SALT: Final = 1 << 20
"""Added to the starting code of the token n-grams a character branch also reads, so that
a token id and a code point of the same value hash to different buckets."""


def hashed_ngrams(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    orders: Sequence[int],
    buckets: int,
    *,
    salt: int = 0,
) -> torch.Tensor:
    """Return the bucket of every token n-gram, 0 where the n-gram runs into padding.

    Args:
        input_ids: ``(batch, sequence)`` token ids.
        attention_mask: ``(batch, sequence)``, 1 for real tokens.
        orders: N-gram lengths, e.g. ``(1, 2, 3)``.
        buckets: Table rows; buckets ``1 .. buckets - 1`` are used.
        salt: Added to each n-gram's starting code, so that another source's n-grams
            hash elsewhere.

    Returns:
        ``(batch, len(orders) * sequence)`` int64 bucket ids, one block per order.
    """
    parts = []
    for n in orders:
        code = torch.full_like(input_ids, n + salt)
        valid = attention_mask.bool()
        for k in range(n):
            # Token k places to the right, zero-padded: no shape arithmetic, so the ONNX
            # export keeps a dynamic sequence axis. Padding before slicing keeps the
            # length for sequences shorter than the n-gram.
            ids = nn.functional.pad(input_ids, (0, k))[:, k:]
            code = (code * _HASH_MULTIPLIER + ids) % _HASH_MODULUS
            valid = valid & nn.functional.pad(attention_mask, (0, k))[:, k:].bool()
        bucket = code % (buckets - 1) + 1
        parts.append(torch.where(valid, bucket, torch.zeros_like(bucket)))
    return torch.cat(parts, dim=1)


@dataclass
class DomainEncoderOutput(SequenceClassifierOutput):
    """``SequenceClassifierOutput`` plus the pooled features the heads read."""

    pooled: torch.Tensor | None = None
    """``(batch, hidden)``: the mean-pooled last hidden state of the encoder."""


def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average token states over the real tokens (e5's sentence embedding)."""
    weights = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class DomainEncoderForSequenceClassification(PreTrainedModel):
    """An encoder and a hashed n-gram branch whose logits are summed.

    Loads and saves like any ``transformers`` model; the package's classifier, training
    and ONNX export use it through ``AutoModelForSequenceClassification`` once this
    module is imported.

    Args:
        config: The model's configuration.

    Example:
        ```python
        import torch

        from langchain_domain_router.classifier.modeling import (
            DomainEncoderConfig,
            DomainEncoderForSequenceClassification,
        )

        config = DomainEncoderConfig(
            vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=128, ngram_buckets=4096, ngram_dim=16, num_labels=3,
        )
        model = DomainEncoderForSequenceClassification(config).eval()
        ids = torch.tensor([[0, 17, 42, 2]])
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        ```
    """

    config_class = DomainEncoderConfig
    base_model_prefix = "encoder"
    ngram_idf: torch.Tensor
    supports_gradient_checkpointing = False
    _no_split_modules = ["BertLayer"]

    def __init__(self, config: DomainEncoderConfig) -> None:
        super().__init__(config)
        own = int(getattr(config, "own_labels", 0) or 0)
        self.num_labels = int(config.num_labels or 0)
        # The base heads' width: all labels, or with an own head the base labels kept.
        base_width = int(getattr(config, "base_labels", 0) or 0) if own else self.num_labels
        if config.base_classifier:
            base = AutoConfig.for_model(**config.base_classifier)
            self.base = AutoModelForSequenceClassification.from_config(base)
            hidden = int(base.hidden_size)
        else:
            self.encoder = BertModel(config, add_pooling_layer=False)
            self.dropout = nn.Dropout(config.hidden_dropout_prob)
            hidden = int(config.hidden_size)
            if base_width:
                self.classifier = nn.Linear(hidden, base_width)
        if own:
            self.own_head = nn.Linear(hidden, own + 1)
            self.register_buffer("base_label_bias", torch.zeros(base_width))
        if config.ngram_buckets:
            self.ngram_embeddings = nn.Embedding(
                config.ngram_buckets, config.ngram_dim, padding_idx=0
            )
            self.ngram_classifier = nn.Linear(config.ngram_dim, base_width)
            # Each bucket's weight in the bag (an IDF); all ones until a fit sets them.
            self.register_buffer("ngram_idf", torch.ones(config.ngram_buckets))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.Embedding) and module is getattr(self, "ngram_embeddings", None):
            # Small rows: the branch starts near zero and grows with what it learns.
            nn.init.normal_(module.weight, std=0.02)
            with torch.no_grad():
                module.weight[0].zero_()

    def ngram_grams(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        char_ids: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Return the hashed n-gram buckets of each source the branch reads.

        Args:
            input_ids: ``(batch, sequence)`` token ids.
            attention_mask: ``(batch, sequence)``, 1 for real tokens.
            char_ids: ``(batch, characters)`` code points, 0-padded (character branch).

        Returns:
            One ``(batch, n-grams)`` bucket array per source, 0 for padding: the tokens'
            alone, or the characters' and then, with ``ngram_token_orders``, the tokens'.

        Raises:
            ValueError: When the branch reads characters and ``char_ids`` is missing.
        """
        config = self.config
        buckets = config.ngram_buckets
        if config.ngram_input != CHAR_IDS:
            return [hashed_ngrams(input_ids, attention_mask, config.ngram_orders, buckets)]
        if char_ids is None:
            msg = f"this model's n-gram branch reads characters: pass {CHAR_IDS}"
            raise ValueError(msg)
        char_mask = (char_ids != 0).to(attention_mask.dtype)
        grams = [hashed_ngrams(char_ids, char_mask, config.ngram_orders, buckets)]
        if config.ngram_token_orders:
            orders = config.ngram_token_orders
            grams.append(hashed_ngrams(input_ids, attention_mask, orders, buckets, salt=TOKEN_SALT))
        return grams

    def ngram_logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        char_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return the n-gram branch's logits alone.

        Each source's hashed n-gram rows are summed with weights ``idf / ||idf||`` over
        its n-grams (a TF-IDF bag of raw counts, L2-normalised); the sources' bags are
        added, then mapped to the labels.

        Args:
            input_ids: ``(batch, sequence)`` token ids.
            attention_mask: ``(batch, sequence)``, 1 for real tokens.
            char_ids: ``(batch, characters)`` code points, 0-padded (character branch).

        Returns:
            ``(batch, num_labels)`` logits.
        """
        bags = []
        for grams in self.ngram_grams(input_ids, attention_mask, char_ids):
            rows = self.ngram_embeddings(grams)
            idf = self.ngram_idf[grams] * (grams != 0).to(rows.dtype)
            weights = idf / idf.pow(2).sum(1, keepdim=True).sqrt().clamp(min=1e-6)
            bags.append((rows * weights.unsqueeze(-1)).sum(1))
        return self.ngram_classifier(torch.stack(bags).sum(0))

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the encoder once: its pooled features and its base logits.

        Args:
            input_ids: ``(batch, sequence)`` token ids.
            attention_mask: ``(batch, sequence)``, 1 for real tokens.
            token_type_ids: Optional, passed to the encoder.

        Returns:
            ``(pooled, logits)``: the mean-pooled last hidden state ``(batch, hidden)``,
            and the encoder branch's logits (``None`` when the model has no base head).
        """
        if self.config.base_classifier:
            out = self.base(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                output_hidden_states=True,
            )
            pooled = getattr(out, "pooled", None)  # a domain-router-encoder base pools itself
            if pooled is None:
                pooled = mean_pool(out.hidden_states[-1], attention_mask)
            return pooled, out.logits
        states = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        pooled = mean_pool(states, attention_mask)
        head = getattr(self, "classifier", None)
        return pooled, None if head is None else head(self.dropout(pooled))

    def _own_logits(self, pooled: torch.Tensor, base: torch.Tensor | None) -> torch.Tensor:
        """Each label's log-odds under one softmax over own labels, out of scope and base."""
        own = nn.functional.log_softmax(self.own_head(pooled), dim=-1)
        log_probs = own[:, :-1]
        if base is not None and self.config.base_labels:
            scaled = base / self.config.base_temperature + self.base_label_bias
            kept = own[:, -1:] + nn.functional.log_softmax(scaled, dim=-1)
            log_probs = torch.cat([log_probs, kept], dim=-1)
        # log(p / (1 - p)), kept finite for p near 1.
        return log_probs - torch.log1p(-log_probs.exp().clamp(max=1 - 1e-6))

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        char_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        """Return the summed logits (and the cross-entropy when ``labels`` are given).

        Args:
            input_ids: ``(batch, sequence)`` token ids.
            attention_mask: ``(batch, sequence)``; all ones when omitted.
            char_ids: ``(batch, characters)`` code points, for a character n-gram branch.
            token_type_ids: Accepted for tokenizers that emit them; passed to the encoder.
            labels: Optional ``(batch,)`` class ids.
            **kwargs: Ignored (``return_dict`` and other ``transformers`` conventions).

        Returns:
            ``DomainEncoderOutput`` with ``logits``, ``pooled`` (and ``loss``).
        """
        if input_ids is None:
            msg = "input_ids is required"
            raise ValueError(msg)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        pooled, logits = self.encode(input_ids, attention_mask, token_type_ids)
        if self.config.ngram_buckets and logits is not None:
            ngram = self.ngram_logits(input_ids, attention_mask, char_ids)
            drop = getattr(self.config, "ngram_branch_dropout", 0.0)
            if self.training and drop:
                # Rows that train without the branch keep the encoder learning once the
                # n-gram table has memorised the training text.
                keep = torch.rand(ngram.shape[0], 1, device=ngram.device) >= drop
                ngram = ngram * keep.to(ngram.dtype)
            logits = logits + ngram
        if getattr(self.config, "own_labels", 0):
            logits = self._own_logits(pooled, logits)
        loss = None
        if labels is not None and logits is not None:
            loss = nn.functional.cross_entropy(logits, labels)
        return DomainEncoderOutput(loss=loss, logits=logits, pooled=pooled)


AutoConfig.register(MODEL_TYPE, DomainEncoderConfig, exist_ok=True)
AutoModelForSequenceClassification.register(
    DomainEncoderConfig, DomainEncoderForSequenceClassification, exist_ok=True
)

__all__ = [
    "CHAR_IDS",
    "MODEL_TYPE",
    "TOKEN_SALT",
    "DomainEncoderConfig",
    "DomainEncoderForSequenceClassification",
    "DomainEncoderOutput",
    "hashed_ngrams",
    "mean_pool",
]

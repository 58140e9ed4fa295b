"""The configuration of the project's own sequence classifier (``modeling``).

A ``BertConfig`` for the encoder plus the shape of the hashed n-gram branch and of the
own-domain head; ``modeling`` registers it under ``MODEL_TYPE`` with ``AutoConfig``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from transformers import BertConfig

MODEL_TYPE = "domain-router-encoder"


class DomainEncoderConfig(BertConfig):
    """Configuration of :class:`DomainEncoderForSequenceClassification`.

    A ``BertConfig`` (the encoder) with the n-gram branch's shape.

    Args:
        ngram_buckets: Rows of the hashed n-gram table (row 0 is padding); 0 disables
            the branch.
        ngram_dim: Width of an n-gram embedding.
        ngram_orders: The token n-gram lengths that are hashed.
        ngram_branch_dropout: In training, the share of rows whose n-gram logits are
            dropped, so that the encoder also learns to classify alone.
        ngram_input: What the branch hashes: token ids (``"input_ids"``) or the
            question's lower-cased characters (``"char_ids"``, an extra model input).
        ngram_max_chars: Characters of a question the character branch reads.
        ngram_token_orders: With ``ngram_input="char_ids"``, the token n-gram lengths
            also hashed into the same table (a second bag, L2-normalised on its own);
            empty: characters only.
        base_classifier: The ``to_dict()`` of any registered sequence classifier's config;
            when given, that model is the encoder branch (its logits are used as they are)
            instead of the mean-pooled BERT stack.
        own_labels: Own domains classified by ``own_head``, a linear layer over the pooled
            features with one more output for "out of scope"; 0: no own head. The model's
            logits are then each label's log-odds (``problem_type`` multi-label): a
            sigmoid gives its share of a softmax over all outputs, and what the labels
            leave is the out-of-scope share.
        base_labels: With ``own_labels``, how many labels of the base taxonomy follow the
            own ones (the base heads' outputs): they share the out-of-scope column's
            probability in proportion to the base's calibrated softmax. 0: the base
            heads are left out.
        base_temperature: The base logits' calibrated temperature (with the
            ``base_label_bias`` buffer), applied before they are combined.
        **kwargs: ``BertConfig`` fields (``vocab_size``, ``hidden_size``,
            ``num_hidden_layers``...) and ``PretrainedConfig`` ones (``id2label``...).

    Example:
        ```python
        from langchain_domain_router.classifier.modeling import DomainEncoderConfig

        config = DomainEncoderConfig(
            vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=128, ngram_buckets=4096, ngram_dim=16, num_labels=3,
        )
        ```
    """

    model_type = MODEL_TYPE

    def __init__(
        self,
        ngram_buckets: int = 1 << 17,
        ngram_dim: int = 64,
        ngram_orders: Sequence[int] = (1, 2, 3),
        ngram_branch_dropout: float = 0.0,
        ngram_input: Literal["input_ids", "char_ids"] = "input_ids",
        ngram_max_chars: int = 512,
        ngram_token_orders: Sequence[int] = (),
        base_classifier: dict[str, Any] | None = None,
        own_labels: int = 0,
        base_labels: int = 0,
        base_temperature: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_classifier = base_classifier
        self.own_labels = own_labels
        self.base_labels = base_labels
        self.base_temperature = base_temperature
        self.ngram_branch_dropout = ngram_branch_dropout
        self.ngram_input = ngram_input
        self.ngram_max_chars = ngram_max_chars
        self.ngram_token_orders = list(ngram_token_orders)
        self.ngram_buckets = ngram_buckets
        self.ngram_dim = ngram_dim
        self.ngram_orders = list(ngram_orders)

"""Fit a classifier for a user's own domains from a few examples each (``fit-domains``).

The base model's encoder stays frozen: its pooled features of the examples, of the
routes' ``out_of_scope`` questions and of the off-topic questions the package ships feed
a softmax head (``_fit_head``) with one out-of-scope class. Cross-validation gives the
per-domain accuracy, the confusable examples and the top-score threshold below which a
question goes to ``general``. The head joins the encoder in a complete model directory
(weights, tokenizer, ``config.json`` with ``id2label``, groups and calibration, ONNX
export) that ``DomainClassifier.from_pretrained`` loads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict, Field

from langchain_domain_router.classifier._ensemble import features_model_path
from langchain_domain_router.classifier._fit_head import (
    cross_validate,
    fit_linear_head,
    fit_threshold,
)
from langchain_domain_router.classifier._model import ClassifierModel
from langchain_domain_router.classifier._onnx_export import export_onnx
from langchain_domain_router.classifier._predictions import resolve_model_path
from langchain_domain_router.classifier._quiet import quiet_model_loading
from langchain_domain_router.classifier._settings import Calibration
from langchain_domain_router.routes import RoutesFile, RoutesSource, read_feedback
from langchain_domain_router.schema import CALIBRATION_KEY
from langchain_domain_router.taxonomy import Taxonomy

if TYPE_CHECKING:
    import numpy as np

    from langchain_domain_router.classifier._fit_head import Head

logger = logging.getLogger(__name__)

REPORT_FILE = "fit_report.json"
"""The fit report, written into the model directory."""
_CONFUSABLE = 10


class Confusable(BaseModel):
    """An example the cross-validated head put in another domain."""

    model_config = ConfigDict(extra="forbid")

    text: str
    domain: str
    """Its domain (``out_of_scope`` for an out-of-scope example)."""
    predicted: str
    """The domain the held-out head chose (``out_of_scope`` for none)."""
    score: float


class FitReport(BaseModel):
    """What ``fit_domains`` fitted and how well it did on its own examples (cross-validated).

    Example:
        ```python
        report = fit_domains("routes.yaml", output_dir="my-router")
        print(report.summary())
        report.cv_accuracy["travel"], report.min_confidence
        ```
    """

    model_config = ConfigDict(extra="forbid")

    model_dir: str
    labels: list[str]
    """The fitted model's labels (own domains first, then any kept base labels)."""
    examples: dict[str, int]
    """Examples per own domain (feedback rows included)."""
    out_of_scope_examples: int
    """Out-of-scope questions: the routes' plus the package's off-topic ones."""
    cv_accuracy: dict[str, float]
    """Per own domain: the share of its examples a head fitted without them labels right."""
    in_domain_kept: float
    """Cross-validated share of examples scoring at least ``min_confidence``."""
    off_topic_rejected: float
    """Cross-validated share of out-of-scope questions scoring below it."""
    min_confidence: float
    """The fitted threshold: below it a question goes to ``general``."""
    confusable: list[Confusable] = Field(default_factory=list)
    """Examples the cross-validated head got wrong, most confident first."""
    seconds: dict[str, float] = Field(default_factory=dict)
    """Wall time of each step: ``features``, ``head``, ``write``."""
    model_version: str

    def summary(self) -> str:
        """The report as a few lines of text (what ``fit-domains`` prints)."""
        lines = [
            f"fitted {len(self.examples)} domains into {self.model_dir} ({self.model_version})"
        ]
        lines.append(f"{'domain':<24} {'examples':>8} {'cv accuracy':>12}")
        for name, count in self.examples.items():
            lines.append(f"{name:<24} {count:>8} {self.cv_accuracy[name]:>12.2f}")
        lines.append(
            f"out of scope: {self.out_of_scope_examples} questions; threshold "
            f"{self.min_confidence:.3f} keeps {self.in_domain_kept:.0%} of the examples and "
            f"sends {self.off_topic_rejected:.0%} of the off-topic questions to general "
            "(cross-validated)"
        )
        if self.confusable:
            lines.append("confusable examples (add examples that tell these apart):")
            lines += [
                f"  [{c.domain} -> {c.predicted} {c.score:.2f}] {c.text}" for c in self.confusable
            ]
        timing = ", ".join(f"{step} {s:.1f} s" for step, s in self.seconds.items())
        lines.append(f"time: {timing}")
        return "\n".join(lines)


def off_topic_questions() -> list[str]:
    """The off-topic questions the package ships for fitting the out-of-scope threshold."""
    text = (resources.files("langchain_domain_router") / "examples" / "off_topic.jsonl").read_text(
        encoding="utf-8"
    )
    return [json.loads(line)["text"] for line in text.splitlines() if line.strip()]


def fit_domains(
    routes: RoutesSource,
    output_dir: str | Path,
    *,
    base: str | Path = "default",
    feedback: str | Path | None = None,
    int8: bool = False,
) -> FitReport:
    """Fit a classifier for the routes' own domains and write it to ``output_dir``.

    Args:
        routes: A routes file, its mapping, or a list of ``Route`` objects.
        output_dir: The model directory to write (created; existing files replaced).
        base: The model whose encoder is used (``"default"``: the embedded model; of an
            ensemble, its ``features`` member).
        feedback: A ``record_feedback`` JSONL file whose rows join their domains' examples.
        int8: Also write the int8 ONNX graph (``quantize="int8"`` runs it; never the
            default: the threshold is fitted on float32 scores, which int8 shifts).

    Returns:
        The report (also written to ``output_dir/fit_report.json``).

    Raises:
        ValueError: If the routes, the feedback or the base model are unusable.
    """
    import numpy as np

    spec = RoutesFile.load(routes)
    if feedback is not None:
        spec = spec.with_feedback(read_feedback(feedback), str(feedback))
    # An ensemble's own domains are fitted on its encoder member's features.
    base_path = features_model_path(resolve_model_path(base))
    encoder = ClassifierModel.from_pretrained(base_path, backend="torch", quantize="float32")
    base_taxonomy = encoder.taxonomy if spec.keep_kmmlu else None
    if base_taxonomy is not None:
        clash = sorted(set(spec.names) & set(base_taxonomy.labels))
        if clash:
            msg = f"domains {clash} are already labels of the base model; rename them"
            raise ValueError(msg)
    names = spec.names
    texts = [text for route in spec.domains for text in route.examples]
    labels = [i for i, route in enumerate(spec.domains) for _ in route.examples]
    outside = list(dict.fromkeys([*spec.out_of_scope, *off_topic_questions()]))
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    features = encoder.features([*texts, *outside])
    seconds["features"] = time.perf_counter() - started

    started = time.perf_counter()
    y = np.array([*labels, *[len(names)] * len(outside)])
    probs = cross_validate(features, y, len(names) + 1)
    own = probs[:, : len(names)]
    inside = y < len(names)
    threshold, kept, rejected = fit_threshold(own[inside].max(1), own[~inside].max(1))
    head = fit_linear_head(features, y, len(names) + 1)
    seconds["head"] = time.perf_counter() - started

    version = "own-" + hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:10]
    calibration = Calibration(
        min_confidence=threshold,
        max_length=encoder.calibration.max_length,
        model_version=version,
    )
    started = time.perf_counter()
    out = Path(output_dir)
    taxonomy = _own_taxonomy(spec, base_taxonomy, version)
    write_model(encoder, head, taxonomy, calibration, out, keep_base=base_taxonomy is not None)
    _export(out, int8=int8)
    seconds["write"] = time.perf_counter() - started

    report = FitReport(
        model_dir=str(out),
        labels=list(taxonomy.labels),
        examples={route.name: len(route.examples) for route in spec.domains},
        out_of_scope_examples=len(outside),
        cv_accuracy={
            name: round(float((probs[y == i].argmax(1) == i).mean()), 4)
            for i, name in enumerate(names)
        },
        in_domain_kept=round(kept, 4),
        off_topic_rejected=round(rejected, 4),
        min_confidence=threshold,
        confusable=_confusable([*texts, *outside], y, probs, [*names, "out_of_scope"]),
        seconds={step: round(s, 2) for step, s in seconds.items()},
        model_version=version,
    )
    (out / REPORT_FILE).write_text(report.model_dump_json(indent=1), encoding="utf-8")
    return report


def _own_taxonomy(spec: RoutesFile, base: Taxonomy | None, version: str) -> Taxonomy:
    display = {r.name: r.description for r in spec.domains if r.description}
    groups = {r.name: r.group for r in spec.domains if r.group}
    if base is None:
        return Taxonomy(
            labels=tuple(spec.names), display_names=display, groups=groups, name=version
        )
    return Taxonomy(
        labels=(*spec.names, *base.labels),
        display_names={**display, **base.display_names},
        groups={**groups, **base.groups},
        name=version,
    )


def _confusable(
    texts: list[str], y: np.ndarray, probs: np.ndarray, names: list[str]
) -> list[Confusable]:
    import numpy as np

    predicted = probs.argmax(1)
    wrong = np.flatnonzero(predicted != y)
    wrong = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:_CONFUSABLE]
    return [
        Confusable(
            text=texts[i],
            domain=names[int(y[i])],
            predicted=names[int(predicted[i])],
            score=round(float(probs[i, predicted[i]]), 4),
        )
        for i in wrong
    ]


def write_model(
    encoder: ClassifierModel,
    head: Head,
    taxonomy: Taxonomy,
    calibration: Calibration,
    out: Path,
    *,
    keep_base: bool,
) -> None:
    """Save the encoder with the own-domain head as a ``DomainEncoderForSequenceClassification``.

    Args:
        encoder: The base classifier, loaded on torch (its weights are copied).
        head: The fitted head (own domains, then the out-of-scope class).
        taxonomy: The new model's taxonomy (own labels, then any kept base labels).
        calibration: The new model's routing block.
        out: The directory to write.
        keep_base: Keep the base model's heads and labels after the own ones.

    Raises:
        ValueError: If the base model's weights do not fit the new model.
    """
    import torch
    from transformers import AutoTokenizer

    from langchain_domain_router.classifier.modeling import (
        DomainEncoderConfig,
        DomainEncoderForSequenceClassification,
    )

    base = encoder.model
    if isinstance(base, DomainEncoderForSequenceClassification):
        config: dict[str, Any] = base.config.to_dict()
        state = base.state_dict()
    else:  # any other sequence classifier becomes the base branch
        inner = base.config
        config = {
            "base_classifier": inner.to_dict(),
            "ngram_buckets": 0,
            "vocab_size": inner.vocab_size,
            "max_position_embeddings": inner.max_position_embeddings,
            "pad_token_id": inner.pad_token_id,
        }
        state = {f"base.{key}": value for key, value in base.state_dict().items()}
    for key in ("id2label", "label2id", "num_labels", "_name_or_path", "architectures"):
        config.pop(key, None)
    base_labels = len(encoder.labels) if keep_base else 0
    config.update(
        own_labels=len(taxonomy.labels) - base_labels,
        base_labels=base_labels,
        base_temperature=encoder.calibration.temperature,
        problem_type="multi_label_classification",
        architectures=["DomainEncoderForSequenceClassification"],
    )
    if not keep_base:
        config.update(ngram_buckets=0, ngram_input="input_ids")
    config[CALIBRATION_KEY] = {}
    calibration.write(config)
    taxonomy.write(config)
    model = DomainEncoderForSequenceClassification(DomainEncoderConfig.from_dict(config))
    missing, _ = model.load_state_dict(state, strict=False)
    if set(missing) - {"own_head.weight", "own_head.bias", "base_label_bias"}:
        msg = f"the base model's weights do not fit: missing {sorted(missing)[:5]}"
        raise ValueError(msg)
    own_head = cast("torch.nn.Linear", model.own_head)
    with torch.no_grad():
        own_head.weight.copy_(torch.from_numpy(head.weight))
        own_head.bias.copy_(torch.from_numpy(head.bias))
        bias = encoder.calibration.bias_vector(encoder.labels) if keep_base else None
        if bias is not None:
            cast("torch.Tensor", model.base_label_bias).copy_(torch.tensor(bias))
    out.mkdir(parents=True, exist_ok=True)
    with quiet_model_loading():
        model.eval().save_pretrained(out)
        AutoTokenizer.from_pretrained(encoder.model_path).save_pretrained(out)


def _export(out: Path, *, int8: bool) -> None:
    if int8 and importlib.util.find_spec("onnx") is None:
        msg = "int8 needs the onnx package: pip install onnx"
        raise ValueError(msg)
    with quiet_model_loading():
        export_onnx(out, int8=int8)

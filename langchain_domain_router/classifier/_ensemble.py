"""Several classifiers of one taxonomy run as one: their log-probabilities, averaged.

An ensemble is a model directory whose ``config.json`` lists ``members``: other model
directories (inside it, or given by path), each with a weight. Every member tokenizes
the question its own way and runs its own forward pass; the ensemble's logits are the
weighted sum of the members' log-softmax outputs, and the ensemble's own routing block
(temperature, thresholds, fitted by ``calibrate`` on the ensemble as a whole) turns them
into probabilities. The members' own calibrations are not used. One member may be named
``features``: the encoder whose pooled output ``DomainClassifier.features`` and
``fit-domains`` read.

This is how a pretrained encoder's head and a cheap surface model (character n-grams
that learnt the exam phrasing) add up: each is wrong on different questions.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from langchain_domain_router.classifier._backends import Backend, load_backend, model_labels
from langchain_domain_router.classifier._onnx import ENSEMBLE_TYPE, LightConfig
from langchain_domain_router.classifier._packed import PACKED_WEIGHTS
from langchain_domain_router.classifier._runtime import ForwardSlots, forward_passes
from langchain_domain_router.schema import CALIBRATION_KEY
from langchain_domain_router.taxonomy import Taxonomy

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from langchain_domain_router.classifier._settings import Precision


class EnsembleMember(BaseModel):
    """One member of an ensemble: a model directory and its weight.

    Example:
        ```python
        EnsembleMember(path="encoder", weight=0.5)
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1)
    """The member's model directory, relative to the ensemble's (or absolute)."""
    weight: float = Field(default=1.0, gt=0)
    """Its log-probabilities' weight in the sum."""


class EnsembleSpec(BaseModel):
    """The ``members`` and ``features`` entries of an ensemble's ``config.json``.

    Example:
        ```python
        EnsembleSpec(
            members=[EnsembleMember(path="surface"), EnsembleMember(path="encoder")],
            features="encoder",
        )
        ```
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    members: list[EnsembleMember] = Field(min_length=2)
    features: str | None = None
    """The member (its ``path``) whose pooled output serves as the ensemble's features."""

    @model_validator(mode="after")
    def _features_is_a_member(self) -> EnsembleSpec:
        paths = [member.path for member in self.members]
        if len(set(paths)) != len(paths):
            msg = f"members are listed twice: {paths}"
            raise ValueError(msg)
        if self.features is not None and self.features not in paths:
            msg = f"features={self.features!r} is not one of the members {paths}"
            raise ValueError(msg)
        return self

    @classmethod
    def read(cls, model_dir: str | Path) -> EnsembleSpec | None:
        """The spec in ``model_dir/config.json``; ``None`` when it is not an ensemble.

        Raises:
            ValueError: If the config says ensemble but its members are malformed.
        """
        config = Path(model_dir) / "config.json"
        if not config.is_file():
            return None
        try:
            raw = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # the loaders that follow report an unreadable config
        if not isinstance(raw, dict) or raw.get("model_type") != ENSEMBLE_TYPE:
            return None
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            msg = f"{config}: malformed ensemble: {exc.errors()[0]['msg']}"
            raise ValueError(msg) from exc

    def member_dirs(self, model_dir: str | Path) -> list[Path]:
        """Each member's directory, relative paths read from ``model_dir``."""
        return [Path(model_dir) / member.path for member in self.members]

    def features_dir(self, model_dir: str | Path) -> Path | None:
        """The ``features`` member's directory, if one is named."""
        return None if self.features is None else Path(model_dir) / self.features


def features_model_path(model_dir: str) -> str:
    """The directory holding ``model_dir``'s encoder: its ``features`` member, or itself.

    Raises:
        ValueError: If ``model_dir`` is an ensemble without a ``features`` member.
    """
    spec = EnsembleSpec.read(model_dir)
    if spec is None:
        return model_dir
    folder = spec.features_dir(model_dir)
    if folder is None:
        msg = f"{model_dir!r} is an ensemble that names no `features` member"
        raise ValueError(msg)
    return str(folder)


class EnsembleTokenizer:
    """Every member's tokenizer at once: one batch of keys ``"<member>:<input>"``.

    Example:
        ```python
        EnsembleTokenizer([surface.tokenizer, encoder.tokenizer]).encode(["미분이란?"])
        ```
    """

    def __init__(self, tokenizers: Sequence[Any]) -> None:
        self.tokenizers = list(tokenizers)
        self.max_length = max(tokenizer.max_length for tokenizer in self.tokenizers)

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Tokenize ``texts`` with each member's tokenizer."""
        return {
            f"{i}:{name}": array
            for i, tokenizer in enumerate(self.tokenizers)
            for name, array in tokenizer.encode(texts).items()
        }


@dataclass
class EnsembleBackend:
    """Member backends run one after the other; their log-probabilities summed by weight.

    Example:
        ```python
        spec = EnsembleSpec.read("models/default")
        backend = load_ensemble("models/default", "onnx", spec=spec, threads=1)
        backend.logits(backend.prepare(backend.tokenizer.encode(["미분이란?"])))
        ```
    """

    members: list[Backend]
    weights: list[float]
    config: LightConfig
    features_member: int | None = None
    name: Literal["torch", "onnx"] = "onnx"
    forward_slots: ForwardSlots = field(default_factory=ForwardSlots)
    tokenizer: EnsembleTokenizer = field(init=False)
    model: tuple[Any, ...] = field(init=False)
    """The members' models."""

    def __post_init__(self) -> None:
        self.tokenizer = EnsembleTokenizer([member.tokenizer for member in self.members])
        self.model = tuple(member.model for member in self.members)

    def prepare(self, encoded: dict[str, np.ndarray]) -> dict[str, Any]:
        """Split the batch by member and let each member prepare its part."""
        parts: list[dict[str, np.ndarray]] = [{} for _ in self.members]
        for key, array in encoded.items():
            index, name = key.split(":", 1)
            parts[int(index)][name] = array
        pairs = enumerate(zip(self.members, parts, strict=True))
        return {str(i): member.prepare(part) for i, (member, part) in pairs}

    def logits(self, inputs: dict[str, Any]) -> np.ndarray:
        """The weighted sum of the members' log-softmax outputs."""
        import numpy as np

        parts = []
        for i, (member, weight) in enumerate(zip(self.members, self.weights, strict=True)):
            z = member.logits(inputs[str(i)]).astype(np.float64)
            z -= z.max(axis=1, keepdims=True)
            parts.append(weight * (z - np.log(np.exp(z).sum(axis=1, keepdims=True))))
        return np.sum(parts, axis=0).astype(np.float32)

    def features(self, inputs: dict[str, Any]) -> np.ndarray:
        """The ``features`` member's pooled output.

        Raises:
            ValueError: If the ensemble names no ``features`` member.
        """
        if self.features_member is None:
            msg = "this ensemble names no `features` member"
            raise ValueError(msg)
        i = self.features_member
        return self.members[i].features(inputs[str(i)])


def _has_weights(folder: Path) -> bool:
    """Whether torch can load the member (else it ships its ONNX graph only)."""
    names = ("model.safetensors", PACKED_WEIGHTS, "pytorch_model.bin")
    return any((folder / name).is_file() for name in names)


def load_ensemble(
    path: str,
    name: Literal["torch", "onnx"],
    *,
    spec: EnsembleSpec,
    threads: int,
    device: str = "cpu",
    quantize_to: Precision | None = None,
    max_length: int | None = None,
) -> EnsembleBackend:
    """Load every member of the ensemble at ``path`` on backend ``name``.

    A member that ships only its ONNX graph runs on ONNX Runtime whatever ``name`` is.

    Raises:
        ValueError: If a member cannot be loaded, is multi-label, or its labels differ
            from the ensemble's.
    """
    config = LightConfig.read(path)
    labels = model_labels(config)
    members = []
    for folder in spec.member_dirs(path):
        if not folder.is_dir():
            msg = f"{path!r}: ensemble member {str(folder)!r} is not a directory"
            raise ValueError(msg)
        member = load_backend(
            str(folder),
            name if _has_weights(folder) else "onnx",
            threads=threads,
            device=device,
            quantize_to=quantize_to,
            max_length=max_length,
        )
        if model_labels(member.config) != labels:
            msg = f"{path!r}: member {folder.name!r} has other labels than the ensemble"
            raise ValueError(msg)
        if getattr(member.config, "problem_type", None) == "multi_label_classification":
            msg = f"{path!r}: member {folder.name!r} is multi-label; members must be softmax"
            raise ValueError(msg)
        members.append(member)
    paths = [member.path for member in spec.members]
    return EnsembleBackend(
        members=members,
        weights=[member.weight for member in spec.members],
        config=config,
        features_member=None if spec.features is None else paths.index(spec.features),
        name=name,
        forward_slots=ForwardSlots(forward_passes(threads)),
    )


def write_ensemble(
    members: Sequence[tuple[str | Path, float]],
    output_dir: str | Path,
    *,
    features: int | None = None,
    model_version: str | None = None,
) -> Path:
    """Copy the member model directories into ``output_dir`` and write its ``config.json``.

    The members are copied as ``member-0``, ``member-1``...; the ensemble takes the first
    member's labels, taxonomy and token cap. Its routing block starts empty: fit it on
    the whole ensemble with ``calibrate``.

    Args:
        members: ``(model_dir, weight)`` pairs.
        output_dir: The ensemble directory (created; must not exist yet).
        features: The index of the member whose pooled output is the ensemble's features.
        model_version: Recorded in the routing block.

    Returns:
        ``output_dir``.

    Raises:
        ValueError: If a member is missing or the members' labels differ.
    """
    out = Path(output_dir)
    if out.exists():
        msg = f"{out} exists; choose a new --output-dir"
        raise ValueError(msg)
    first = json.loads((Path(members[0][0]) / "config.json").read_text(encoding="utf-8"))
    labels = model_labels(LightConfig.read(members[0][0]))
    for folder, _ in members:
        if not (Path(folder) / "config.json").is_file():
            msg = f"{folder}: not a model directory (no config.json)"
            raise ValueError(msg)
        if model_labels(LightConfig.read(folder)) != labels:
            msg = f"{folder}: its labels differ from {members[0][0]}'s"
            raise ValueError(msg)
    spec = EnsembleSpec(
        members=[EnsembleMember(path=f"member-{i}", weight=w) for i, (_, w) in enumerate(members)],
        features=None if features is None else f"member-{features}",
    )
    out.mkdir(parents=True)
    for (folder, _), target in zip(members, spec.member_dirs(out), strict=True):
        shutil.copytree(folder, target, ignore=shutil.ignore_patterns("checkpoint*", "features"))
    block = {"max_length": (first.get(CALIBRATION_KEY) or {}).get("max_length", 64)}
    if model_version is not None:
        block["model_version"] = model_version
    config = {
        "model_type": ENSEMBLE_TYPE,
        "problem_type": "single_label_classification",
        **spec.model_dump(),
        CALIBRATION_KEY: block,
    }
    Taxonomy.of(first).write(config)
    (out / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1) + "\n")
    return out

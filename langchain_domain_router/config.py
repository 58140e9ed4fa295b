"""The router configuration, loadable from YAML, TOML or JSON."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from langchain_domain_router._redact import profile_secrets
from langchain_domain_router.classifier import ClassifierSettings
from langchain_domain_router.profiles import ExpertProfile
from langchain_domain_router.schema import BuiltinNode
from langchain_domain_router.settings_files import read_settings_file, write_settings_file
from langchain_domain_router.taxonomy import Taxonomy

CONFIG_ENV = "DOMAIN_ROUTER_CONFIG"
"""The environment variable naming the router configuration file (platform, server)."""
_RESERVED = {*get_args(BuiltinNode), "__start__", "__end__"}


class FanOutSettings(BaseModel):
    """Send a question to the experts of its two top domains when they are close.

    Example:
        ```python
        FanOutSettings(enabled=True, max_margin=0.15, min_second_score=0.2)
        ```
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    """Off by default: fan-out doubles the expert cost of the questions it touches."""
    max_margin: float = Field(default=0.15, ge=0, le=1)
    """Fan out when top-1 minus top-2 is below this."""
    min_second_score: float = Field(default=0.2, ge=0, le=1)
    """...and the second domain scores at least this."""


class StickySettings(BaseModel):
    """Keep a conversation with its previous domain unless the classifier is sure of a new one.

    A follow-up such as "그럼 그건 어떻게 계산해?" carries little domain signal: with
    stickiness it stays with the expert of the previous turn (reason ``sticky``), and
    only a prediction of another domain scoring at least ``switch_confidence`` moves it.

    Example:
        ```python
        StickySettings(enabled=True, switch_confidence=0.8)
        ```
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    """Off by default."""
    switch_confidence: float = Field(default=0.8, ge=0, le=1)
    """The score another domain needs to take the conversation over (hysteresis)."""


class StreamingSettings(BaseModel):
    """What ``stream`` does with the tokens of an expert attempt that may still fail.

    An expert can stream part of an answer and then fail; the retry or the fallback
    then answers. Either way the streamed chunks add up to the text ``invoke`` returns.

    Example:
        ```python
        StreamingSettings(buffer="off")  # live tokens, with reset chunks on a retry
        ```
    """

    model_config = ConfigDict(extra="forbid")

    buffer: Literal["attempt", "off"] = "attempt"
    """``"attempt"``: hold each attempt's tokens until it has succeeded (no partial
    answer ever reaches the client). ``"off"``: pass tokens on as they arrive; when an
    attempt is abandoned, a chunk with ``response_metadata["stream_reset"] == True``
    tells the client to discard the text received so far, and the answer follows."""


def _claims(experts: Iterable[ExpertProfile], field: str) -> dict[str, list[ExpertProfile]]:
    claims: dict[str, list[ExpertProfile]] = {}
    for expert in experts:
        for key in getattr(expert, field):
            claims.setdefault(key, []).append(expert)
    return claims


def _winner(candidates: list[ExpertProfile]) -> ExpertProfile:
    return max(candidates, key=lambda expert: expert.priority)


def _local_taxonomy(model: str) -> Taxonomy | None:
    """The taxonomy of a local model directory, or ``None`` for a hub id (read at load)."""
    from langchain_domain_router.classifier import resolve_model_path

    folder = Path(resolve_model_path(model)).expanduser()
    return Taxonomy.of_model(folder) if (folder / "config.json").is_file() else None


def check_taxonomy(experts: Iterable[ExpertProfile], taxonomy: Taxonomy) -> None:
    """Check the experts' domains, groups and ``quality`` keys against a model's taxonomy.

    Raises:
        ValueError: Naming the field (``experts.0.domains``) and the model's names.
    """
    for i, expert in enumerate(experts):
        taxonomy.check_domains(expert.domains, f"experts.{i}.domains")
        for group in expert.supercategories:
            try:
                taxonomy.check_group(group)
            except ValueError as exc:
                msg = f"experts.{i}.supercategories: {exc}"
                raise ValueError(msg) from None
        for j, candidate in enumerate(expert.candidates):
            taxonomy.check_domains(candidate.quality, f"experts.{i}.candidates.{j}.quality")


class RouterConfig(BaseModel):
    """The experts, the fallback and the thresholds of a router.

    A domain goes to the expert that names it in ``domains``; otherwise to the expert
    that names its group (``supercategories``); otherwise to the fallback. Domains and
    groups are the classifier model's own (its ``config.json``): the 45 KMMLU subjects
    and their supercategories for the default model, a user's own domains for a model
    ``domain-router fit-domains`` wrote. ``None`` thresholds take the values the
    classifier model was calibrated with.

    Example:
        ```python
        from langchain_domain_router import RouterConfig

        config = RouterConfig.from_file("router.yaml")
        config = RouterConfig(
            experts=[{"name": "stem", "model": "openai:gpt-4o", "supercategories": ["STEM"]}],
            fallback={"name": "general", "model": "openai:gpt-4o-mini"},
            min_confidence=0.4,
        )
        ```
    """

    model_config = ConfigDict(extra="forbid")

    experts: list[ExpertProfile] = Field(default_factory=list)
    """The domain experts."""
    fallback: ExpertProfile
    """The general expert for low-confidence, unmapped and failed questions; it always
    runs as the ``general`` node, whatever its ``name``."""
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    """Below this top-1 probability the question falls back."""
    min_margin: float | None = Field(default=None, ge=0, le=1)
    """Below this top-1 minus top-2 probability the question falls back."""
    min_supercategory_confidence: float = Field(default=0.6, ge=0, le=1)
    """When the domain is uncertain, the supercategory mass needed to route to the
    supercategory's expert instead of the fallback (hierarchical fallback)."""
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    """Which classifier to load."""
    fan_out: FanOutSettings = Field(default_factory=FanOutSettings)
    """Top-2 fan-out with a merge node."""
    sticky: StickySettings = Field(default_factory=StickySettings)
    """Domain stickiness across the turns of a conversation."""
    streaming: StreamingSettings = Field(default_factory=StreamingSettings)
    """How ``stream`` treats the tokens of an attempt that may fail."""

    _taxonomy: Taxonomy | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_experts(self) -> Self:
        names = [expert.name for expert in self.experts]
        reserved = sorted(_RESERVED.intersection(names))
        if reserved:
            msg = f"experts: the names {reserved} are reserved for built-in nodes; rename them"
            raise ValueError(msg)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            msg = f"experts: duplicate expert names {duplicates}"
            raise ValueError(msg)
        for field in ("domains", "supercategories"):
            for key, claimants in _claims(self.experts, field).items():
                top = max(expert.priority for expert in claimants)
                tied = [expert.name for expert in claimants if expert.priority == top]
                if len(tied) > 1:
                    msg = (
                        f"experts.{field}: {key!r} is claimed by {tied} with equal "
                        "priority; remove it from all but one, or give one a higher `priority`"
                    )
                    raise ValueError(msg)
        taxonomy = _local_taxonomy(self.classifier.model)
        if taxonomy is not None:
            check_taxonomy([*self.experts, self.fallback], taxonomy)
            self._taxonomy = taxonomy
        return self

    @property
    def taxonomy(self) -> Taxonomy | None:
        """The classifier model's taxonomy (``None`` until a hub model is loaded)."""
        return self._taxonomy

    def bind(self, taxonomy: Taxonomy) -> Self:
        """Check the experts against a model's taxonomy; a copy routes with its groups.

        The configuration reads its local model's taxonomy when validated;
        ``build_router_graph`` binds the loaded classifier's.

        Args:
            taxonomy: The classifier model's taxonomy.

        Returns:
            The configuration itself when it already has that taxonomy, else a copy.

        Raises:
            ValueError: If an expert names a domain, group or quality key the model lacks.
        """
        if taxonomy == self._taxonomy:
            return self
        check_taxonomy([*self.experts, self.fallback], taxonomy)
        bound = self.model_copy()
        bound._taxonomy = taxonomy
        return bound

    def expert_for_domain(self, domain: str) -> ExpertProfile | None:
        """Return the expert that answers ``domain``, or ``None`` when none does."""
        claimants = _claims(self.experts, "domains").get(domain)
        if claimants:
            return _winner(claimants)
        group = self._taxonomy.group_of(domain) if self._taxonomy else None
        return self.expert_for_supercategory(group) if group else None

    def expert_for_supercategory(self, supercategory: str) -> ExpertProfile | None:
        """Return the expert that names the group ``supercategory``, or ``None``."""
        claimants = _claims(self.experts, "supercategories").get(supercategory)
        return _winner(claimants) if claimants else None

    @classmethod
    def from_file(cls, path: str | Path) -> Self:
        """Load a configuration from a ``.yaml``/``.yml``, ``.toml`` or ``.json`` file.

        Args:
            path: The file.

        Returns:
            The validated configuration.

        Raises:
            ValueError: If the file is missing, unreadable, of an unknown kind or not
                valid (a ``pydantic.ValidationError`` names the offending field).
        """
        return cls.model_validate(read_settings_file(path))

    @classmethod
    def load(cls, config: RouterConfig | str | Path | None = None) -> Self:
        """The one way every entry point turns "a configuration" into one.

        Args:
            config: A configuration (returned as is), a YAML/TOML/JSON file, or ``None``
                for the example configuration shipped with the package.

        Returns:
            The validated configuration.

        Raises:
            ValueError: As ``from_file``.
        """
        if isinstance(config, cls):
            return config
        if isinstance(config, RouterConfig):
            return cls.model_validate(config.model_dump())
        return cls.example() if config is None else cls.from_file(config)

    @classmethod
    def from_env(cls) -> Self:
        """Load the file ``DOMAIN_ROUTER_CONFIG`` names (the example when it is unset)."""
        return cls.load(os.environ.get(CONFIG_ENV) or None)

    def to_file(self, path: str | Path) -> Path:
        """Write the configuration as ``.yaml``/``.yml`` or ``.json`` (defaults left out).

        Args:
            path: The file to write.

        Returns:
            The path written.

        Raises:
            ValueError: If a model is a Python instance (only ``provider:model`` strings
                can be written) or the suffix is not YAML or JSON.
        """
        instances = [
            expert.name
            for expert in [*self.experts, self.fallback]
            for option in expert.options()
            if not isinstance(option.model, str)
        ]
        if instances:
            msg = f"experts {instances} use chat-model instances, which cannot be written to a file"
            raise ValueError(msg)
        return write_settings_file(path, self.model_dump(mode="json", exclude_defaults=True))

    @classmethod
    def example(cls) -> Self:
        """Load the example configuration shipped with the package (all 45 domains)."""
        return cls.from_file(example_config_path())


def example_config_path() -> Path:
    """The example configuration file shipped with the package (commented YAML)."""
    from importlib import resources

    return Path(str(resources.files("langchain_domain_router") / "examples" / "router.yaml"))


def config_secrets(config: RouterConfig) -> set[str]:
    """Return the credentials of every expert model of a router configuration."""
    return {secret for p in [*config.experts, config.fallback] for secret in profile_secrets(p)}

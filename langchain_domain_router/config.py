"""Expert profiles and router configuration, loadable from YAML, TOML or JSON."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Self, get_args

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from langchain_domain_router._files import read_settings_file, write_settings_file
from langchain_domain_router._taxonomy import KMMLU_DOMAINS, Supercategory
from langchain_domain_router.classifier import ClassifierSettings
from langchain_domain_router.schema import BuiltinNode

CONFIG_ENV = "DOMAIN_ROUTER_CONFIG"
"""The environment variable naming the router configuration file (platform, server)."""
MessagePolicy = Literal["last_human", "conversation", "all"]
"""Which messages of the conversation an expert sees (``ExpertProfile.message_policy``)."""
_RESERVED = {*get_args(BuiltinNode), "__start__", "__end__"}


def check_domain(domain: str) -> str:
    """Return ``domain`` if it is a KMMLU subject, else raise with a "did you mean"."""
    if domain not in KMMLU_DOMAINS:
        close = difflib.get_close_matches(domain, list(KMMLU_DOMAINS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"unknown KMMLU domain {domain!r}{hint}"
        raise ValueError(msg)
    return domain


class CandidateModel(BaseModel):
    """One model an expert may answer with, its price and its measured quality.

    Example:
        ```python
        CandidateModel(
            model="openai:gpt-4o-mini",
            input_cost_per_1m=0.15,
            output_cost_per_1m=0.60,
            quality={"Law": 0.52, "Criminal-Law": 0.48},
        )
        ```
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    model: str | BaseChatModel
    """A ``provider:model`` string for ``init_chat_model``, or a chat-model instance."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra ``init_chat_model`` arguments."""
    input_cost_per_1m: float = Field(default=0.0, ge=0)
    """USD per million input tokens."""
    output_cost_per_1m: float = Field(default=0.0, ge=0)
    """USD per million output tokens."""
    quality: dict[str, float] = Field(default_factory=dict)
    """Accuracy per KMMLU domain (0-1), e.g. measured with ``measure_quality``."""

    @field_validator("quality")
    @classmethod
    def _known_quality_domains(cls, quality: dict[str, float]) -> dict[str, float]:
        for domain, value in quality.items():
            check_domain(domain)
            if not 0.0 <= value <= 1.0:
                msg = f"quality of {domain!r} must be between 0 and 1, got {value}"
                raise ValueError(msg)
        return quality

    @property
    def model_name(self) -> str:
        """A readable name of the model."""
        if isinstance(self.model, str):
            return self.model
        return str(getattr(self.model, "model_name", None) or type(self.model).__name__)

    @property
    def blended_cost_per_1m(self) -> float:
        """Input plus output price per million tokens: the number candidates compete on."""
        return self.input_cost_per_1m + self.output_cost_per_1m

    def estimate_cost(self, input_tokens: int, output_tokens: int) -> float:
        """Price token usage with this candidate's rates, in USD."""
        return (
            input_tokens * self.input_cost_per_1m + output_tokens * self.output_cost_per_1m
        ) / 1e6


class ExpertProfile(BaseModel):
    """One expert chat model: what it covers, what it costs, and how to call it.

    Example:
        ```python
        from langchain_domain_router import ExpertProfile

        law = ExpertProfile(
            name="law",
            model="openai:gpt-4o-mini",
            domains=["Law", "Criminal-Law", "Patent"],
            system_prompt="당신은 한국 법률 전문가입니다.",
            input_cost_per_1m=0.15,
            output_cost_per_1m=0.60,
        )
        ```
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", max_length=64)
    """The expert's node name in the graph."""
    model: str | BaseChatModel = "offline"
    """A ``provider:model`` string for ``init_chat_model``, a chat-model instance, or
    ``"offline"`` for the offline expert that explains the routing instead of answering."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra ``init_chat_model`` arguments, e.g. ``base_url`` or ``temperature``."""
    domains: list[str] = Field(default_factory=list)
    """KMMLU subjects this expert answers, spelled as KMMLU spells them."""
    supercategories: list[Supercategory] = Field(default_factory=list)
    """KMMLU supercategories this expert answers (for domains no expert names)."""
    system_prompt: str | None = None
    """The expert's instructions: the first part of the one system message it receives."""
    message_policy: MessagePolicy = "conversation"
    """Which messages of the conversation the expert sees: ``"last_human"`` only the
    question; ``"conversation"`` the human turns and the AI answers, without tool calls
    and tool results; ``"all"`` every message. System messages in the conversation are
    merged after ``system_prompt`` into one system message at the start (dropped under
    ``"last_human"``), since some providers reject a second system message."""
    input_cost_per_1m: float = Field(default=0.0, ge=0)
    """USD per million input tokens."""
    output_cost_per_1m: float = Field(default=0.0, ge=0)
    """USD per million output tokens."""
    timeout_s: float = Field(default=60.0, gt=0)
    """Seconds one call may take before it counts as failed."""
    max_retries: int = Field(default=1, ge=0, le=10)
    """Retries after a failed or timed-out call, before the fallback answers."""
    priority: int = 0
    """Tie-break when two experts claim the same domain or supercategory: higher wins."""
    tags: list[str] = Field(default_factory=list)
    """Free-form labels, e.g. ``["cheap", "korean"]``."""
    candidates: list[CandidateModel] = Field(default_factory=list)
    """Several models to choose from per question (cost-aware routing); when empty, the
    expert always answers with ``model`` at the profile's prices."""
    selection: Literal["cheapest_above_floor", "best_under_budget"] = "cheapest_above_floor"
    """How a candidate is chosen: the cheapest whose quality on the domain reaches
    ``quality_floor``, or the best quality whose blended price fits ``budget_per_1m``."""
    quality_floor: float = Field(default=0.0, ge=0, le=1)
    """Minimum quality on the question's domain for ``cheapest_above_floor``."""
    budget_per_1m: float | None = Field(default=None, ge=0)
    """Maximum input+output USD per million tokens for ``best_under_budget``."""

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, domains: list[str]) -> list[str]:
        return [check_domain(domain) for domain in domains]

    @model_validator(mode="after")
    def _budget_when_needed(self) -> Self:
        if self.selection == "best_under_budget" and self.budget_per_1m is None:
            msg = "budget_per_1m is required when selection is 'best_under_budget'"
            raise ValueError(msg)
        return self

    def options(self) -> list[CandidateModel]:
        """The models this expert chooses from (the profile's own model when none listed)."""
        if self.candidates:
            return self.candidates
        return [
            CandidateModel(
                model=self.model,
                model_kwargs=self.model_kwargs,
                input_cost_per_1m=self.input_cost_per_1m,
                output_cost_per_1m=self.output_cost_per_1m,
            )
        ]

    @property
    def model_name(self) -> str:
        """A readable name of the configured model."""
        return self.options()[0].model_name


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


class RouterConfig(BaseModel):
    """The experts, the fallback and the thresholds of a router.

    A domain goes to the expert that names it in ``domains``; otherwise to the expert
    that names its supercategory; otherwise to the fallback. ``None`` thresholds take
    the values the classifier model was calibrated with.

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
        return self

    def expert_for_domain(self, domain: str) -> ExpertProfile | None:
        """Return the expert that answers ``domain``, or ``None`` when none does."""
        claimants = _claims(self.experts, "domains").get(domain)
        if claimants:
            return _winner(claimants)
        info = KMMLU_DOMAINS.get(domain)
        return self.expert_for_supercategory(info.supercategory) if info else None

    def expert_for_supercategory(self, supercategory: str) -> ExpertProfile | None:
        """Return the expert that names ``supercategory``, or ``None``."""
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
        from importlib import resources

        example = resources.files("langchain_domain_router") / "examples" / "router.yaml"
        return cls.from_file(Path(str(example)))

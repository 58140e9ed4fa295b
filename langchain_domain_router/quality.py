"""Measure each candidate model's accuracy per domain on multiple-choice questions.

The result is the domain x model quality matrix that cost-aware routing reads
(``CandidateModel.quality``): run every candidate of every expert on KMMLU questions of the
domains that expert covers, and write the accuracies back into the configuration.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from langchain_domain_router.config import RouterConfig
from langchain_domain_router.graph.experts import resolve_chat_model
from langchain_domain_router.profiles import ExpertProfile
from langchain_domain_router.taxonomy import Taxonomy

PROMPT = (
    "다음 문제의 정답을 A, B, C, D 중 하나의 알파벳 한 글자로만 답하세요.\n\n"
    "{question}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\n정답:"
)
_CHOICE = re.compile(r"(?<![A-Z])([ABCD])(?![A-Z])")  # Korean may touch the letter


@dataclass(frozen=True)
class MultipleChoice:
    """One four-option question with its answer.

    Example:
        ```python
        MultipleChoice("1+1은?", ("1", "2", "3", "4"), answer=2, domain="Math")
        ```
    """

    question: str
    options: tuple[str, str, str, str]
    answer: int
    """The correct option, 1-4 (KMMLU's convention)."""
    domain: str


def kmmlu_questions(folder: str | Path, split: str = "test") -> list[MultipleChoice]:
    """Load the four-option KMMLU questions of one split, with their answers.

    Args:
        folder: The folder of upstream KMMLU ``{Subject}-{split}.csv`` files.
        split: ``train``, ``dev`` or ``test``.

    Returns:
        The questions that have four options and an answer.

    Raises:
        ValueError: If the folder holds no such files or a file is corrupt.
    """
    from langchain_domain_router.data import load_kmmlu

    return [
        MultipleChoice(
            row.text,
            (row.options[0], row.options[1], row.options[2], row.options[3]),
            row.answer,
            row.label,
        )
        for row in load_kmmlu(folder, split)
        if row.answer is not None and len(row.options) == 4
    ]


def parse_choice(reply: str) -> int | None:
    """Return the option (1-4) a reply names first, or ``None`` when it names none."""
    match = _CHOICE.search(reply.upper())
    return "ABCD".index(match.group(1)) + 1 if match else None


def covered_domains(expert: ExpertProfile, taxonomy: Taxonomy | None = None) -> list[str]:
    """The domains an expert answers: its own, and those of its groups.

    Args:
        expert: The expert.
        taxonomy: The classifier model's taxonomy; ``None``: the default model's (KMMLU),
            whose questions ``measure_quality`` asks.
    """
    taxonomy = taxonomy or Taxonomy.kmmlu()
    sups = set(expert.supercategories)
    return [
        name
        for name in taxonomy.labels
        if name in expert.domains or taxonomy.group_of(name) in sups
    ]


def sample_by_domain(
    questions: Iterable[MultipleChoice], domains: Sequence[str], per_domain: int, seed: int = 0
) -> dict[str, list[MultipleChoice]]:
    """Pick up to ``per_domain`` questions of each domain, fixed-seed."""
    pools: dict[str, list[MultipleChoice]] = defaultdict(list)
    wanted = set(domains)
    for question in questions:
        if question.domain in wanted:
            pools[question.domain].append(question)
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    return {domain: rng.sample(pool, min(per_domain, len(pool))) for domain, pool in pools.items()}


def accuracy(model: BaseChatModel, questions: Sequence[MultipleChoice], concurrency: int) -> float:
    """Ask ``model`` every question; a failed call or an unparsable reply counts as wrong."""
    prompts: list[Any] = [
        PROMPT.format(
            question=q.question, a=q.options[0], b=q.options[1], c=q.options[2], d=q.options[3]
        )
        for q in questions
    ]
    replies = model.batch(prompts, config={"max_concurrency": concurrency}, return_exceptions=True)
    correct = sum(
        isinstance(reply, BaseMessage) and parse_choice(str(reply.text)) == q.answer
        for reply, q in zip(replies, questions, strict=True)
    )
    return correct / len(questions)


def measure_quality(
    config: RouterConfig,
    questions: Iterable[MultipleChoice],
    *,
    per_domain: int = 20,
    concurrency: int = 4,
    seed: int = 0,
) -> RouterConfig:
    """Measure every candidate of every expert on the domains it covers.

    Experts without ``candidates`` have no choice to make and are left as they are.

    Args:
        config: The router configuration.
        questions: Multiple-choice questions with answers (e.g. the KMMLU test split).
        per_domain: Questions asked per domain and candidate.
        concurrency: Parallel calls per candidate.
        seed: Seed of the question sample.

    Returns:
        A copy of ``config`` whose candidates carry the measured ``quality``.

    Raises:
        ValueError: If a candidate's model cannot be reached, or no question matches.
    """
    pool = list(questions)
    experts = []
    for expert in config.experts:
        if not expert.candidates:
            experts.append(expert)
            continue
        sample = sample_by_domain(pool, covered_domains(expert, config.taxonomy), per_domain, seed)
        if not sample:
            msg = f"experts.{expert.name}: no questions for the domains it covers"
            raise ValueError(msg)
        candidates = []
        for candidate in expert.candidates:
            model, unavailable = resolve_chat_model(candidate)
            if model is None:
                msg = f"experts.{expert.name}: cannot reach {candidate.model_name}: {unavailable}"
                raise ValueError(msg)
            quality = {
                domain: round(accuracy(model, items, concurrency), 4)
                for domain, items in sorted(sample.items())
            }
            candidates.append(candidate.model_copy(update={"quality": quality}))
        experts.append(expert.model_copy(update={"candidates": candidates}))
    return config.model_copy(update={"experts": experts})


def quality_table(config: RouterConfig) -> str:
    """The domain x model matrix of a measured configuration, as a Markdown table."""
    columns = [
        (expert.name, candidate)
        for expert in config.experts
        for candidate in expert.candidates
        if candidate.quality
    ]
    domains = sorted({domain for _, c in columns for domain in c.quality})
    header = "| domain | " + " | ".join(f"{e}: {c.model_name}" for e, c in columns) + " |"
    rows = [header, "|---" * (len(columns) + 1) + "|"]
    for domain in domains:
        cells = [f"{c.quality[domain]:.2f}" if domain in c.quality else "" for _, c in columns]
        rows.append(f"| {domain} | " + " | ".join(cells) + " |")
    return "\n".join(rows)

"""The example questions of the README, the CLI help and the quick-start notebook.

The README's marked table (between ``<!-- examples:begin -->`` and
``<!-- examples:end -->``) says where each example question goes with the shipped model
and the example configuration: domain, confidence, expert and reason.
``test_readme_examples.py`` checks every row, and that every example question used in the
README, ``domain-router --help``, the Makefile and notebook 01 is a row.

After the default model changes, run from the repository root::

    python -m tests.integration_tests.readme_examples           # compare; exit 1 on a mismatch
    python -m tests.integration_tests.readme_examples --write   # also refresh the numbers

``--write`` rewrites numbers only: the confidence column and the README's sample routing
record (score, margin, ``min_confidence``). The domain column is what a person says the
question is about, so a row whose domain, expert or reason no longer agrees is listed and
must be replaced by hand with a question the new model gets right (then run it again).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
MAKEFILE = REPO_ROOT / "Makefile"
NOTEBOOK = REPO_ROOT / "notebooks" / "01_quick_start.ipynb"
BEGIN, END = "<!-- examples:begin -->", "<!-- examples:end -->"
NO_DOMAIN = "—"
"""The domain cell of a question no domain is meant for (it goes to the fallback)."""
TOLERANCE = 0.03
"""How far the model's top-1 probability may be from the confidence the table shows."""

_LITERAL = re.compile(r'"([^"\n]+)"')
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_SENTENCE = re.compile(r"^[A-Z][A-Za-z]*( [^ ]+){2,}[?.]$")
_CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_RECORD = re.compile(
    r'"domain": "(?P<domain>[^"]+)", "score": (?P<score>[0-9.]+), "margin": (?P<margin>[0-9.]+),'
    r'\s*"top_k": \[\{"label": "[^"]+", "score": (?P<top>[0-9.]+)\}.*?'
    r'"expert": "(?P<expert>[^"]+)", "reason": "(?P<reason>[^"]+)", '
    r'"explanation": "[^"(]+\([^)]+\) scored (?P<explained>[0-9.]+) …".*?'
    r'"min_confidence": (?P<min_confidence>[0-9.]+)',
    re.DOTALL,
)


@dataclass(frozen=True)
class Example:
    """One row of the README's example table."""

    question: str
    domain: str | None
    confidence: float
    expert: str
    reason: str


def _table(text: str) -> tuple[int, int]:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        msg = f"the README has no {BEGIN} ... {END} block"
        raise ValueError(msg)
    return start + len(BEGIN), end


def read_examples(text: str) -> list[Example]:
    """Parse the README's example table (``question | domain | confidence | expert | reason``).

    Args:
        text: The README.

    Returns:
        The rows, in order.
    """
    start, end = _table(text)
    examples = []
    for line in text[start:end].strip().splitlines()[2:]:
        question, domain, confidence, expert, reason = (
            cell.strip() for cell in line.strip().strip("|").split("|")
        )
        examples.append(
            Example(
                question=question,
                domain=None if domain == NO_DOMAIN else domain,
                confidence=float(confidence),
                expert=expert,
                reason=reason,
            )
        )
    return examples


def _questions_in(code: Iterable[str]) -> set[str]:
    """String literals that are questions: Korean text, or an English sentence."""
    found = set()
    for block in code:
        for literal in _LITERAL.findall(block):
            if "…" not in literal and (_HANGUL.search(literal) or _SENTENCE.match(literal)):
                found.add(literal)
    return found


def quick_start_question(readme: str) -> str:
    """The question of the README's first ``router.invoke(...)``: the sample record's."""
    match = re.search(r'router\.invoke\("([^"]+)"\)', readme)
    if match is None:
        msg = "the README has no router.invoke(...) example"
        raise ValueError(msg)
    return match.group(1)


def example_questions() -> dict[str, set[str]]:
    """Every example question, by where it is used.

    Returns:
        ``{"README.md": {...}, "domain-router --help": {...}, ...}``.
    """
    from langchain_domain_router import cli

    readme = README.read_text(encoding="utf-8")
    start, end = _table(readme)
    outside_table = readme[:start] + readme[end:]
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    make = re.search(r"^QUESTION \?= (.+)$", MAKEFILE.read_text(encoding="utf-8"), re.MULTILINE)
    return {
        "README.md": _questions_in(_CODE_BLOCK.findall(outside_table)),
        "domain-router --help": _questions_in([cli.build_parser(plugins=False).format_help()]),
        "Makefile": {make.group(1).strip()} if make else set(),
        NOTEBOOK.name: _questions_in(cells),
    }


def route(questions: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Route each question with the shipped model and the example config, offline.

    Args:
        questions: The questions.

    Returns:
        The routing record of each question.
    """
    from langchain_domain_router import DomainRouter

    router = DomainRouter.from_config()
    answers = router.batch(list(questions))
    return {q: a.response_metadata["routing"] for q, a in zip(questions, answers, strict=True)}


def problems(example: Example, routing: dict[str, Any]) -> list[str]:
    """What in ``routing`` disagrees with the README's row; empty when it all agrees.

    Args:
        example: A row of the table.
        routing: The routing record of its question.

    Returns:
        One line per disagreement.
    """
    found = []
    if example.domain is not None and routing["domain"] != example.domain:
        found.append(f"domain {routing['domain']} ({routing['score']:.2f}), not {example.domain}")
    for field in ("expert", "reason"):
        if routing[field] != getattr(example, field):
            found.append(f"{field} {routing[field]}, not {getattr(example, field)}")
    if abs(routing["score"] - example.confidence) > TOLERANCE:
        found.append(f"confidence {routing['score']:.2f}, not {example.confidence:.2f}")
    return found


def read_record(readme: str) -> dict[str, Any]:
    """The README's sample routing record (``### What you get back``), the fields it shows."""
    match = _RECORD.search(readme)
    if match is None:
        msg = "the README's sample routing record is not where the pattern expects it"
        raise ValueError(msg)
    values: dict[str, Any] = match.groupdict()
    for name in ("score", "margin", "top", "explained", "min_confidence"):
        values[name] = float(values[name])
    return values


def _refreshed(readme: str, routings: dict[str, dict[str, Any]]) -> str:
    start, end = _table(readme)
    lines = readme[start:end].strip("\n").splitlines()
    for index, example in enumerate(read_examples(readme), start=2):
        cells = lines[index].strip().strip("|").split("|")
        cells[2] = f" {routings[example.question]['score']:.2f} "
        lines[index] = "|" + "|".join(cells) + "|"
    readme = readme[:start] + "\n" + "\n".join(lines) + "\n" + readme[end:]
    record = routings[quick_start_question(readme)]
    match = _RECORD.search(readme)
    if match is None:
        return readme
    numbers = {
        "score": record["score"],
        "top": record["score"],
        "explained": record["score"],
        "margin": record["margin"],
        "min_confidence": record["min_confidence"],
    }
    # Right to left, so earlier offsets stay valid.
    for name in sorted(numbers, key=match.start, reverse=True):
        readme = readme[: match.start(name)] + f"{numbers[name]:.2f}" + readme[match.end(name) :]
    return readme


def main(argv: Sequence[str] | None = None) -> int:
    """Compare the README's examples with the shipped model; ``--write`` refreshes numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the README's numbers")
    args = parser.parse_args(argv)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        os.environ.pop(name, None)
    readme = README.read_text(encoding="utf-8")
    examples = read_examples(readme)
    listed = {example.question for example in examples}
    missing = {
        where: sorted(questions - listed)
        for where, questions in example_questions().items()
        if questions - listed
    }
    routings = route(sorted(listed | {quick_start_question(readme)}))
    failures = 0
    for example in examples:
        routing = routings[example.question]
        wrong = [p for p in problems(example, routing) if not p.startswith("confidence")]
        failures += bool(wrong)
        sys.stdout.write(
            f"{'MISMATCH' if wrong else 'ok':<8} {example.question} -> {routing['domain']} "
            f"{routing['score']:.2f} {routing['expert']} {routing['reason']}"
            + (f"  ({'; '.join(wrong)})" if wrong else "")
            + "\n"
        )
    for where, questions in missing.items():
        sys.stdout.write(f"not in the table, used in {where}: {questions}\n")
    if args.write:
        README.write_text(_refreshed(readme, routings), encoding="utf-8")
        sys.stdout.write(f"numbers refreshed in {README}\n")
    return 1 if failures or missing else 0


if __name__ == "__main__":
    raise SystemExit(main())

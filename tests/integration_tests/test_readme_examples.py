"""The README's example questions go where the README says, with the shipped model.

The expectations are read from the README's example table (see ``readme_examples.py``,
which also refreshes them after a model change); nothing is copied here.
"""

from __future__ import annotations

from typing import Any

import pytest

from langchain_domain_router.classifier import default_model_path
from tests.integration_tests import readme_examples
from tests.integration_tests.readme_examples import Example, problems

README = readme_examples.README.read_text(encoding="utf-8")
EXAMPLES = readme_examples.read_examples(README)

needs_model = pytest.mark.skipif(
    not (default_model_path() / "config.json").is_file(), reason="no embedded default model"
)


@pytest.fixture(scope="module")
def routings() -> dict[str, dict[str, Any]]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            patch.delenv(name, raising=False)
        questions = {e.question for e in EXAMPLES} | {readme_examples.quick_start_question(README)}
        return readme_examples.route(sorted(questions))


def test_every_example_question_in_the_docs_is_in_the_table():
    listed = {example.question for example in EXAMPLES}
    used = readme_examples.example_questions()
    assert all(used.values()), used  # the extraction finds questions in every source
    assert {where: sorted(qs - listed) for where, qs in used.items() if qs - listed} == {}


def test_the_table_covers_experts_and_the_fallback():
    assert len(EXAMPLES) >= 5
    assert {"law", "business", "science", "general"} <= {e.expert for e in EXAMPLES}


@needs_model
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.question for e in EXAMPLES])
def test_each_example_routes_as_the_readme_says(example: Example, routings):
    assert problems(example, routings[example.question]) == []


@needs_model
def test_the_sample_routing_record_is_the_quick_start_questions(routings):
    record = readme_examples.read_record(README)
    routing = routings[readme_examples.quick_start_question(README)]
    assert (record["domain"], record["expert"], record["reason"]) == (
        routing["domain"],
        routing["expert"],
        routing["reason"],
    )
    for shown, actual in [
        (record["score"], routing["score"]),
        (record["top"], routing["score"]),
        (record["explained"], routing["score"]),
        (record["margin"], routing["margin"]),
        (record["min_confidence"], routing["min_confidence"]),
    ]:
        assert shown == pytest.approx(actual, abs=readme_examples.TOLERANCE)


def test_a_row_the_model_disagrees_with_is_reported():
    row = Example("q", "Law", 0.95, "law", "confident")
    routing = {"domain": "Geomatics", "score": 0.44, "expert": "engineering", "reason": "confident"}
    assert [p.split()[0] for p in problems(row, routing)] == ["domain", "expert", "confidence"]
    fallback = Example("q", None, 0.02, "general", "low_confidence")
    chit_chat = {"domain": "Education", "score": 0.03, "expert": "general"}
    assert problems(fallback, {**chit_chat, "reason": "low_confidence"}) == []


def test_the_readme_stays_short():
    # Details live on the documentation site (docs/), history in CHANGELOG.md.
    assert len(README.splitlines()) < 250

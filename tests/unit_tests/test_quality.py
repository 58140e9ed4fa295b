"""Measuring the domain x model quality matrix, offline with fake candidate models."""

import pytest
from langchain_core.language_models import FakeListChatModel

from langchain_domain_router import CandidateModel, ExpertProfile, RouterConfig
from langchain_domain_router.graph.policy import choose_candidate
from langchain_domain_router.quality import (
    MultipleChoice,
    covered_domains,
    measure_quality,
    parse_choice,
    quality_table,
)

OPTIONS = ("가", "나", "다", "라")
# Law answers are all B, Criminal-Law answers are A, A, C, D.
QUESTIONS = (
    [MultipleChoice(f"법 {i}", OPTIONS, 2, "Law") for i in range(4)]
    + [
        MultipleChoice(f"형법 {i}", OPTIONS, answer, "Criminal-Law")
        for i, answer in enumerate([1, 1, 3, 4])
    ]
    + [MultipleChoice("수학", OPTIONS, 1, "Math")]
)


def always(letter: str) -> FakeListChatModel:
    return FakeListChatModel(responses=[f"정답은 {letter}입니다"])


@pytest.mark.parametrize(
    ("reply", "choice"),
    [("B", 2), ("정답: C", 3), ("(D) 입니다", 4), ("a", 1), ("모르겠습니다", None), ("ABC", None)],
)
def test_parse_choice(reply, choice):
    assert parse_choice(reply) == choice


def test_measure_quality_fills_the_matrix_and_drives_the_choice():
    law = ExpertProfile(
        name="law",
        domains=["Law", "Criminal-Law"],
        candidates=[
            CandidateModel(model=always("B"), input_cost_per_1m=0.1, output_cost_per_1m=0.4),
            CandidateModel(model=always("A"), input_cost_per_1m=2.5, output_cost_per_1m=10),
        ],
        quality_floor=0.5,
    )
    config = RouterConfig(experts=[law], fallback=ExpertProfile(name="g"))
    measured = measure_quality(config, QUESTIONS, per_domain=10)
    cheap, strong = measured.experts[0].candidates
    assert cheap.quality == {"Criminal-Law": 0.0, "Law": 1.0}
    assert strong.quality == {"Criminal-Law": 0.5, "Law": 0.0}
    assert choose_candidate(measured.experts[0], "Law")[0] == 0
    assert choose_candidate(measured.experts[0], "Criminal-Law")[0] == 1
    table = quality_table(measured)
    assert "| Law | 1.00 | 0.00 |" in table and "| Criminal-Law | 0.00 | 0.50 |" in table


def test_measure_quality_needs_questions_and_reachable_models(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    unreachable = ExpertProfile(
        name="law", domains=["Law"], candidates=[CandidateModel(model="openai:gpt-4o")]
    )
    config = RouterConfig(experts=[unreachable], fallback=ExpertProfile(name="g"))
    with pytest.raises(ValueError, match="cannot reach openai:gpt-4o"):
        measure_quality(config, QUESTIONS)
    nothing = ExpertProfile(
        name="bio", domains=["Biology"], candidates=[CandidateModel(model=always("A"))]
    )
    with pytest.raises(ValueError, match="no questions"):
        measure_quality(
            RouterConfig(experts=[nothing], fallback=ExpertProfile(name="g")), QUESTIONS
        )


def test_covered_domains_include_supercategories():
    expert = ExpertProfile(name="x", domains=["Law"], supercategories=["STEM"])
    domains = covered_domains(expert)
    assert "Law" in domains and "Math" in domains and "Taxation" not in domains

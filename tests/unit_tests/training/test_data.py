from pathlib import Path

import pytest

pytest.importorskip("sklearn")  # the training package needs the [train] extra
pytest.importorskip("matplotlib")

from langchain_domain_router.training._data import (
    DataError,
    load_kmmlu,
    load_labelled_file,
    load_labelled_folder,
    load_ood_questions,
    stratified_split,
)
from langchain_domain_router.training._splits import DataSources, load_bundle


def test_kmmlu_subject_from_file_name_and_columns_by_header(tiny_shared: Path) -> None:
    rows = load_kmmlu(tiny_shared / "kmmlu", "test")
    assert {r.label for r in rows} == {"Accounting", "Math", "Korean-History"}
    math = [r for r in rows if r.label == "Math"]
    assert math[0].options[2] == "정답"  # math-test.csv has swapped trailing columns upstream


def test_missing_split_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=str(tmp_path)):
        load_kmmlu(tmp_path, "train")


def test_unknown_subject_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "Alchemy-train.csv").write_text("question,A,B,C,D\nq,a,b,c,d\n", encoding="utf-8")
    with pytest.raises(DataError, match="Alchemy-train.csv.*'Alchemy'"):
        load_kmmlu(tmp_path, "train")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("a.jsonl", '{"text": "q", "label": "Cooking"}\n', r"a\.jsonl.*Cooking"),
        ("b.jsonl", "{not json\n", r"b\.jsonl.*cannot read"),
        ("c.csv", "text,label\n", r"c\.csv.*empty"),
        ("d.csv", "question,label\nq,Math\n", r"d\.csv.*missing column"),
        ("e.csv", None, r"e\.csv.*not found"),
    ],
)
def test_labelled_file_errors_name_the_file(
    tmp_path: Path, name: str, content: str | None, match: str
) -> None:
    if content is not None:
        (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=match):
        load_labelled_file(tmp_path / name)


def test_stratified_split_is_fixed_and_complete(tiny_shared: Path) -> None:
    rows = load_labelled_folder(tiny_shared / "synthetic")
    a = stratified_split(rows, (0.7, 0.15), seed=0)
    b = stratified_split(rows, (0.7, 0.15), seed=0)
    assert a == b
    assert sum(map(len, a)) == len(rows)
    assert not set(a[0]) & set(a[2])


def test_bundle_keeps_test_out_of_training(tiny_shared: Path) -> None:
    bundle = load_bundle(DataSources.shared(tiny_shared))
    train_texts = {r.text for r in bundle.train}
    assert not train_texts & {r.text for r in bundle.synthetic_test}
    assert not set(bundle.ood_train) & {t for v in bundle.ood_test.values() for t in v}
    assert bundle.kmmlu_test and bundle.validation


def test_ood_questions(tiny_shared: Path) -> None:
    ood = load_ood_questions(tiny_shared / "korean_text")
    assert ood["korquad"][0].startswith("서울")
    assert ood["question-pair"] and ood["sentences"]


def test_kmmlu_rows_carry_their_answer(tiny_shared: Path) -> None:
    rows = load_kmmlu(tiny_shared / "kmmlu", "test")
    assert all(r.answer in {1, 2, 3, 4} for r in rows if len(r.options) == 4)


def test_feedback_files_fold_into_training(tmp_path: Path) -> None:
    from langchain_domain_router.feedback import FeedbackStore
    from langchain_domain_router.training import build_parser
    from langchain_domain_router.training._commands import sources_of

    store = FeedbackStore(tmp_path / "misroutes.jsonl")
    store.remember("r1", "그럼 그건 어떻게 계산해?", "Accounting")
    store.record("r1", "Taxation")
    args = build_parser().parse_args(
        ["train", "--output-dir", str(tmp_path / "run"), "--feedback", str(store.path)]
    )
    assert sources_of(args).extra == [str(store.path)]
    (row,) = load_labelled_file(store.path)
    assert (row.text, row.label) == ("그럼 그건 어떻게 계산해?", "Taxation")


def test_extra_folder_goes_into_training_only(tiny_shared: Path, tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        '{"text": "굴착기 유압펌프 소음 원인", "label": "Construction", "style": "keyword"}\n',
        encoding="utf-8",
    )
    (tmp_path / "b.csv").write_text("text,label\nWhat is a sine bar?,Industrial-Engineer\n")
    sources = DataSources.shared(tiny_shared)
    sources.extra = [str(tmp_path)]
    bundle = load_bundle(sources)
    written = {"굴착기 유압펌프 소음 원인", "What is a sine bar?"}
    added = [r for r in bundle.train if r.text in written]
    assert [(r.label, r.style) for r in added] == [
        ("Construction", "keyword"),
        ("Industrial-Engineer", "other"),
    ]
    evaluated = bundle.validation + bundle.kmmlu_test + bundle.synthetic_test
    assert not {r.text for r in added} & {r.text for r in evaluated}

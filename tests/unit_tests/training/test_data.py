from pathlib import Path

import pytest

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


def test_labelled_file_errors(tmp_path: Path) -> None:
    bad_label = tmp_path / "a.jsonl"
    bad_label.write_text('{"text": "q", "label": "Cooking"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"a\.jsonl.*Cooking"):
        load_labelled_file(bad_label)
    corrupt = tmp_path / "b.jsonl"
    corrupt.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"b\.jsonl"):
        load_labelled_file(corrupt)
    empty = tmp_path / "c.csv"
    empty.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.csv.*empty"):
        load_labelled_file(empty)
    no_column = tmp_path / "d.csv"
    no_column.write_text("question,label\nq,Math\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.csv.*missing column"):
        load_labelled_file(no_column)
    with pytest.raises(DataError, match="not found"):
        load_labelled_file(tmp_path / "nope.csv")


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

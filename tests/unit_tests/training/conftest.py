"""A tiny ``shared/data``-shaped tree built in a tmp dir, so tests need no ../shared."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

SUBJECTS = {
    "Accounting": ["감가상각 회계 기준", "재무제표 자산 부채", "원가 회계 분개"],
    "Math": ["함수 미분 적분", "행렬 고유값 계산", "확률 분포 기댓값"],
    "Korean-History": ["조선 왕조 세종", "고려 시대 무신정권", "삼국 시대 신라"],
}
FILE_NAMES = {"Korean-History": "korean-history", "Math": "math"}


def _kmmlu(root: Path) -> None:
    root.mkdir(parents=True)
    for subject, phrases in SUBJECTS.items():
        stem = FILE_NAMES.get(subject, subject)
        for split, n in (("train", 12), ("dev", 2), ("test", 4)):
            header = ["question", "answer", "A", "B", "C", "D", "Category", "Human Accuracy"]
            if stem == "math" and split == "test":
                header = header[:6] + ["Human Accuracy", "Category"]  # the upstream quirk
            with (root / f"{stem}-{split}.csv").open("w", encoding="utf-8", newline="") as fh:
                writer = csv.DictWriter(fh, header)
                writer.writeheader()
                for i in range(n):
                    writer.writerow(
                        {
                            "question": f"{phrases[i % 3]} 문제 {i}?",
                            "answer": 1,
                            "A": phrases[0],
                            "B": phrases[1],
                            "C": "정답",
                            "D": "오답",
                            "Category": subject,
                            "Human Accuracy": 0.5,
                        }
                    )


def _synthetic(root: Path) -> None:
    root.mkdir(parents=True)
    with (root / "tiny.jsonl").open("w", encoding="utf-8") as fh:
        for subject, phrases in SUBJECTS.items():
            for style in ("conversational", "exam", "keyword", "english"):
                for i in range(7):
                    text = f"{phrases[i % 3]} {style} 질문 {i}"
                    fh.write(
                        json.dumps(
                            {"text": text, "label": subject, "style": style}, ensure_ascii=False
                        )
                        + "\n"
                    )


def _korean_text(root: Path) -> None:
    everyday = ["오늘 점심 뭐 먹지", "주말에 영화 볼까", "날씨가 좋네요", "잠이 안 와"]
    (root / "question-pair").mkdir(parents=True)
    for name in ("train", "dev", "test"):
        rows = [f"{q} {name} {i}\t{q} 진짜 {i}\t0" for i, q in enumerate(everyday * 3)]
        (root / "question-pair" / f"{name}.tsv").write_text(
            "question1\tquestion2\tis_duplicate\n" + "\n".join(rows) + "\n", encoding="utf-8"
        )
    (root / "korquad").mkdir()
    qas = [
        {"question": f"서울의 인구는 {i}년에 몇 명?", "id": str(i), "answers": []}
        for i in range(20)
    ]
    doc = {"data": [{"paragraphs": [{"qas": qas, "context": ""}]}]}
    (root / "korquad" / "KorQuAD_v1.0_dev.json").write_text(json.dumps(doc), encoding="utf-8")
    for folder, name in (
        ("kornli", "xnli.dev.ko.tsv"),
        ("korsts", "sts-dev.tsv"),
        ("paws", "dev_2k.tsv"),
    ):
        (root / folder).mkdir()
        lines = [f"고양이가 {i} 잔다\t개가 {i} 뛴다" for i in range(10)]
        (root / folder / name).write_text(
            "sentence1\tsentence2\n" + "\n".join(lines) + "\n", encoding="utf-8"
        )


@pytest.fixture(scope="session")
def tiny_shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny data tree laid out like ``../shared/data``."""
    root = tmp_path_factory.mktemp("shared") / "data"
    _kmmlu(root / "kmmlu")
    _synthetic(root / "synthetic")
    _korean_text(root / "korean_text")
    return root

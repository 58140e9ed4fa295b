"""Accuracy on every held-out question style, for several classifiers, in one run.

The default model is chosen by its *worst* held-out style, not by KMMLU test: questions
written outside the project come in styles no training row has. The styles scored here:

- the synthetic test split, by style (conversational, exam, keyword, English);
- the project's held-out sets in ``data/heldout`` (consultation titles, word problems,
  long questions with context, questions naming people and places), which never enter
  training;
- certification-exam questions of 9 subjects (``domain_questions``, evaluation only), a
  fixed-seed sample per subject;

plus a KMMLU test sample, the out-of-domain AUROC (the in-domain rows above against the
question-pair and KorQuAD test questions), one-question latency and the model's size.

    python benchmarks/bench_styles.py --data ../shared/data --model default \
        --model runs/head12/model --model runs/ft6/model
"""

from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (  # noqa: E402 - the path above makes the package importable
    QUESTIONS,
    ROOT,
    SHARED,
    load_kmmlu,
    machine_state,
    p50_p99,
    sample,
    table,
    timings_ms,
)

HELDOUT = ROOT / "data" / "heldout"
_Rows = list[tuple[str, str]]


def style_sets(data: Path, per_exam_subject: int, kmmlu_size: int) -> dict[str, _Rows]:
    """Every scored set: ``name -> [(text, label)]``; sets whose data is absent are left out."""
    from langchain_domain_router.training._splits import DataSources, load_bundle

    sets: dict[str, _Rows] = defaultdict(list)
    bundle = load_bundle(DataSources(synthetic=str(data / "synthetic")), with_train=False)
    for row in bundle.synthetic_test:
        sets[f"synthetic {row.style}"].append((row.text, row.label))
    for path in sorted(HELDOUT.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            sets[f"held-out {row['style']}"].append((row["text"], row["label"]))
    exam = data / "domain_questions" / "questions.csv"
    if exam.is_file():
        by_label: dict[str, _Rows] = defaultdict(list)
        with exam.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                by_label[row["label"]].append((row["text"], row["label"]))
        for label in sorted(by_label):
            sets["certification exams"] += sample(by_label[label], per_exam_subject)
    kmmlu = sample(load_kmmlu(str(data), "test"), kmmlu_size)
    if kmmlu:
        sets["KMMLU test sample"] = kmmlu
    return dict(sets)


def ood_questions(data: Path) -> list[str]:
    """The out-of-domain test questions the training splits hold back."""
    from langchain_domain_router.training._splits import DataSources, load_bundle

    folder = data / "korean_text"
    if not folder.is_dir():
        return []
    bundle = load_bundle(DataSources(korean_text=str(folder)), with_train=False)
    return [text for texts in bundle.ood_test.values() for text in texts]


def score(model: str, sets: dict[str, _Rows], ood: list[str]) -> dict[str, Any]:
    """Accuracy per set, OOD AUROC, latency and size of one model."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from langchain_domain_router import DomainClassifier

    classifier = DomainClassifier.from_pretrained(model, batch_size=128).load()
    index = {label: i for i, label in enumerate(classifier.labels)}

    def probs(texts: list[str]) -> Any:
        return classifier.scores(classifier.predict_logits(texts))

    result: dict[str, Any] = {}
    confidences = []
    for name, rows in sets.items():
        p = probs([text for text, _ in rows])
        result[name] = float((p.argmax(1) == np.array([index[label] for _, label in rows])).mean())
        if name != "KMMLU test sample":
            confidences.append(p.max(1))
    if ood and confidences:
        inside, outside = np.concatenate(confidences), probs(ood).max(1)
        truth = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
        result["OOD AUROC"] = float(roc_auc_score(truth, np.r_[inside, outside]))
    questions = iter(QUESTIONS * 100)
    result["p50 ms"], result["p99 ms"] = p50_p99(
        timings_ms(lambda: classifier.classify_texts([next(questions)]), 300)
    )
    folder = Path(model)
    result["size MB"] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    return result


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def main() -> None:
    """Score each ``--model`` and print the variant table."""
    import argparse

    from langchain_domain_router.classifier import default_model_path

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", help="model dir or 'default' (repeatable)")
    p.add_argument("--data", default=str(SHARED), help="the shared data folder")
    p.add_argument("--exam-per-subject", type=int, default=200)
    p.add_argument("--kmmlu", type=int, default=2000, help="KMMLU test questions sampled")
    args = p.parse_args()
    models = [str(default_model_path()) if m == "default" else m for m in args.model or ["default"]]
    machine_state()
    sets = style_sets(Path(args.data), args.exam_per_subject, args.kmmlu)
    ood = ood_questions(Path(args.data))
    results = {model: score(model, sets, ood) for model in models}
    styles = [name for name in sets if name != "KMMLU test sample"]
    names = [Path(m).parent.name if Path(m).name == "model" else Path(m).name for m in models]
    rows: list[list[object]] = [
        [f"{name} (n={len(sets[name])})", *(results[m][name] for m in models)] for name in sets
    ]
    for title, summary in (("**worst held-out style**", min), ("mean of the styles", _mean)):
        rows.append([title, *(summary(results[m][s] for s in styles) for m in models)])
    for key in ("OOD AUROC", "p50 ms", "p99 ms", "size MB"):
        rows.append([key, *(results[m].get(key, "-") for m in models)])
    table("Top-1 accuracy by held-out style", ["set", *names], rows)


if __name__ == "__main__":
    main()

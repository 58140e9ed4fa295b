import asyncio
import json
import threading
from pathlib import Path

import pytest
import torch

from langchain_domain_router import KMMLU_DOMAINS, DomainClassifier, DomainPrediction
from tests.conftest import count_forwards


def test_from_pretrained_loads_a_real_checkpoint_and_predicts(math_checkpoint):
    classifier = DomainClassifier.from_pretrained(math_checkpoint, top_k=3)
    prediction = classifier.invoke("미분계수의 정의를 설명해 주세요")
    assert isinstance(prediction, DomainPrediction)
    assert prediction.label == "Math"
    assert prediction.score > 0.99
    assert prediction.supercategory == "STEM"
    assert len(prediction.top_k) == 3
    assert [s.score for s in prediction.top_k] == sorted(
        (s.score for s in prediction.top_k), reverse=True
    )
    stem = [label for label in classifier.labels if KMMLU_DOMAINS[label].supercategory == "STEM"]
    probs = classifier.scores(torch.tensor(classifier.predict_logits(["x"])))[0].tolist()
    expected = sum(p for label, p in zip(classifier.labels, probs, strict=True) if label in stem)
    assert prediction.supercategory_scores["STEM"] == pytest.approx(expected)
    assert sum(prediction.supercategory_scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.model_version == "tiny-test"


def test_labels_and_their_order_come_from_id2label(make_checkpoint):
    labels = ["Law", "Math", "Taxation", "NotAKmmluLabel"]
    path = make_checkpoint(labels=labels, bias={"NotAKmmluLabel": 8.0})
    classifier = DomainClassifier.from_pretrained(path)
    assert classifier.labels == labels
    prediction = classifier.invoke("anything")
    assert prediction.label == "NotAKmmluLabel"
    assert prediction.supercategory is None


def test_temperature_from_the_model_config_softens_scores(make_checkpoint):
    sharp = DomainClassifier.from_pretrained(make_checkpoint(bias={"Law": 4.0}))
    soft = DomainClassifier.from_pretrained(
        make_checkpoint(bias={"Law": 4.0}, domain_router={"temperature": 4.0})
    )
    assert soft.temperature == 4.0
    assert soft.invoke("q").label == sharp.invoke("q").label == "Law"
    assert soft.invoke("q").score < sharp.invoke("q").score


def test_batch_runs_one_forward_pass_per_chunk(math_checkpoint, monkeypatch):
    classifier = DomainClassifier.from_pretrained(math_checkpoint, batch_size=4).load()
    calls = count_forwards(classifier, monkeypatch)
    questions = [f"질문 {i} 미분" * (i % 3 + 1) for i in range(10)]
    predictions = classifier.batch(questions)
    assert len(predictions) == 10
    assert calls == [4, 4, 2]
    assert [p.label for p in predictions] == ["Math"] * 10


def test_batch_keeps_bad_inputs_in_place_with_return_exceptions(math_checkpoint):
    classifier = DomainClassifier.from_pretrained(math_checkpoint)
    results = classifier.batch(["미분", "", 3, "적분"], return_exceptions=True)
    assert isinstance(results[0], DomainPrediction)
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], TypeError)
    assert isinstance(results[3], DomainPrediction)
    with pytest.raises(ValueError, match="empty"):
        classifier.batch(["미분", " "])


async def test_async_matches_sync_and_does_not_block_the_loop(math_checkpoint):
    classifier = DomainClassifier.from_pretrained(math_checkpoint).load()
    questions = ["미분", "법인세", "조선 후기 실학"]
    sync = [p.model_dump() for p in classifier.batch(questions)]
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    assert [p.model_dump() for p in await classifier.abatch(questions)] == sync
    assert (await classifier.ainvoke(questions[0])).model_dump() == sync[0]
    task.cancel()
    assert ticks > 0


def test_lazy_load_happens_once_across_threads(math_checkpoint, monkeypatch):
    classifier = DomainClassifier.from_pretrained(math_checkpoint)
    loads = []
    original = classifier._load

    def counting_load():
        loads.append(1)
        original()

    monkeypatch.setattr(classifier, "_load", counting_load)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(classifier.invoke("미분"))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert loads == [1]


def test_huge_input_is_cut_before_tokenizing(math_checkpoint):
    classifier = DomainClassifier.from_pretrained(math_checkpoint, max_length=16)
    prediction = classifier.invoke("미분 " * 500_000)  # ~1.5 MB
    assert prediction.label == "Math"
    encoded = classifier.preprocess(["미분 " * 500_000])
    assert encoded["input_ids"].shape[1] <= 16


def test_missing_or_broken_model_directories_fail_clearly(tmp_path: Path, math_checkpoint):
    with pytest.raises(ValueError, match="model directory not found"):
        DomainClassifier.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        DomainClassifier.from_pretrained(tmp_path / "empty")
    broken = tmp_path / "no-labels"
    broken.mkdir()
    config = json.loads((math_checkpoint / "config.json").read_text())
    del config["id2label"], config["label2id"]
    config["num_labels"] = 45
    (broken / "config.json").write_text(json.dumps(config))
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((math_checkpoint / name).read_bytes())
    with pytest.raises(ValueError, match="no id2label"):
        DomainClassifier.from_pretrained(broken).invoke("x")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "config.json").write_text((math_checkpoint / "config.json").read_text())
    with pytest.raises(ValueError, match="could not load"):
        DomainClassifier.from_pretrained(truncated).invoke("x")


def test_predict_logits_returns_raw_scores(math_checkpoint):
    classifier = DomainClassifier.from_pretrained(math_checkpoint, batch_size=2)
    logits = classifier.predict_logits(["a", "b", "c"])
    assert logits.shape == (3, len(KMMLU_DOMAINS))
    assert logits[0, classifier.labels.index("Math")] == pytest.approx(10.0)


async def test_an_empty_batch_is_an_empty_answer_with_any_config(classifier_for):
    classifier = classifier_for({"Math": 5.0})
    assert classifier.batch([], []) == [] and await classifier.abatch([], []) == []
    assert await classifier.abatch([]) == []

"""``fit-domains``: own domains fitted from a few examples into a real model that routes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from langchain_domain_router import (
    DomainClassifier,
    DomainRouter,
    Route,
    RouterConfig,
    RoutesFile,
    fit_domains,
)
from langchain_domain_router.cli import main
from langchain_domain_router.routes import MAX_ROUTES_BYTES

ROUTES = {
    "domains": [
        {
            "name": "calculus",
            "description": "미적분",
            "group": "science",
            "examples": [
                "미분계수의 정의",
                "미분계수를 설명해 주세요",
                "미분계수의 정의를 설명",
                "정의를 설명해 주세요 미분계수",
                "미분계수 설명",
                "Fourier transform 미분계수",
            ],
        },
        {
            "name": "property",
            "group": "law",
            "examples": [
                "근저당권 설정 등기",
                "근저당권 설정 등기는 어떻게 하나요?",
                "등기는 어떻게 하나요 근저당권",
                "근저당권 설정",
                "설정 등기 근저당권?",
            ],
        },
        {
            "name": "tax",
            "examples": [
                "법인세 신고 기한",
                "법인세 신고 기한이 언제예요?",
                "신고 기한 법인세",
                "법인세 언제예요?",
                "법인세 신고",
            ],
        },
    ],
    "out_of_scope": ["오늘 점심 뭐 먹지?", "점심 뭐 먹지", "오늘 뭐 먹지?"],
}


def build_encoder(directory: Path, texts: list[str]) -> Path:
    """Save a tiny mean-pooled BERT-stack ``DomainEncoderForSequenceClassification``.

    Random weights over a WordPiece vocabulary trained on ``texts``: distinct words give
    distinct pooled features, which is all a head fitted over them needs.
    """
    import torch
    from transformers import PreTrainedTokenizerFast

    from langchain_domain_router import KMMLU_DOMAINS
    from langchain_domain_router.classifier.modeling import (
        DomainEncoderConfig,
        DomainEncoderForSequenceClassification,
    )
    from tests.conftest import wordpiece

    tok = wordpiece(texts, vocab_size=2000)
    labels = dict(enumerate(KMMLU_DOMAINS))
    sizes = {"hidden_size": 64, "intermediate_size": 128, "max_position_embeddings": 64}
    config = DomainEncoderConfig(
        vocab_size=tok.get_vocab_size(),
        num_hidden_layers=1,
        num_attention_heads=2,
        ngram_buckets=0,
        id2label=labels,
        label2id={label: i for i, label in labels.items()},
        **sizes,
    )
    config.domain_router = {"model_version": "tiny-encoder", "max_length": 64}
    torch.manual_seed(0)
    DomainEncoderForSequenceClassification(config).save_pretrained(directory)
    # The plain fast tokenizer keeps this one's normaliser (a BERT one would split Hangul).
    tokens = {"unk_token": "[UNK]", "pad_token": "[PAD]"}
    PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=64, **tokens).save_pretrained(
        directory
    )
    return directory


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ELECTRA (the shape of a ``base_classifier``) that says Math to everything."""
    from tests.conftest import build_checkpoint

    return build_checkpoint(tmp_path_factory.mktemp("base"), bias={"Math": 6.0})


@pytest.fixture(scope="module")
def encoder_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from langchain_domain_router.classifier._fit_domains import off_topic_questions

    texts = [text for route in ROUTES["domains"] for text in route["examples"]]
    texts += [*ROUTES["out_of_scope"], *off_topic_questions()]
    return build_encoder(tmp_path_factory.mktemp("encoder"), texts)


@pytest.fixture(scope="module")
def fitted(encoder_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The real command on a small routes file: its model directory and its output."""
    folder = tmp_path_factory.mktemp("fit")
    routes = folder / "routes.yaml"
    routes.write_text(yaml.safe_dump(ROUTES, allow_unicode=True), encoding="utf-8")
    out = folder / "model"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(
            ["fit-domains", str(routes), "--output-dir", str(out), "--base", str(encoder_base)]
        )
    assert status == 0
    return out, printed.getvalue()


def test_fit_domains_writes_a_complete_model(fitted):
    out, printed = fitted
    assert "fitted 3 domains" in printed and "cv accuracy" in printed
    report = json.loads((out / "fit_report.json").read_text(encoding="utf-8"))
    assert report["examples"] == {"calculus": 6, "property": 5, "tax": 5}
    assert 0.0 < report["min_confidence"] < 1.0
    classifier = DomainClassifier.from_pretrained(out)
    assert classifier.resolved_backend == "onnx"
    assert classifier.labels == ["calculus", "property", "tax"]
    taxonomy = classifier.taxonomy
    assert taxonomy.group_names == ("science", "law")
    assert taxonomy.display("calculus") == "calculus (미적분)"
    assert classifier.calibration.min_confidence == report["min_confidence"]
    for route in ROUTES["domains"]:
        predictions = classifier.batch(route["examples"])
        assert [p.label for p in predictions] == [route["name"]] * len(route["examples"])
    # The scores are shares of one softmax with the out-of-scope class: they sum below 1.
    prediction = classifier.invoke("오늘 점심 뭐 먹지?")
    assert sum(s.score for s in prediction.top_k) < 1.0
    assert prediction.score < classifier.calibration.min_confidence


def test_both_backends_agree_and_return_the_pooled_features(fitted):
    out, _ = fitted
    texts = ["법인세 신고 기한이 언제예요?", "미분계수의 정의"]
    onnx = DomainClassifier.from_pretrained(out, backend="onnx")
    torch = DomainClassifier.from_pretrained(out, backend="torch")
    np.testing.assert_allclose(onnx.predict_logits(texts), torch.predict_logits(texts), atol=1e-3)
    features = onnx.features(texts)
    assert features.shape == (2, 64)
    np.testing.assert_allclose(features, torch.features(texts), atol=1e-4)


def test_the_fitted_model_routes_through_the_graph(fitted):
    out, _ = fitted
    config = RouterConfig.model_validate(
        {
            "classifier": {"model": str(out)},
            "experts": [
                {"name": "math_helper", "model": "offline", "domains": ["calculus"]},
                {"name": "legal", "model": "offline", "supercategories": ["law"]},
            ],
            "fallback": {"name": "general", "model": "offline"},
        }
    )
    router = DomainRouter.from_config(config)
    routing = router.invoke("미분계수를 설명해 주세요").response_metadata["routing"]
    assert (routing["domain"], routing["expert"], routing["reason"]) == (
        "calculus",
        "math_helper",
        "confident",
    )
    assert "calculus (미적분)" in routing["explanation"]
    assert router.invoke("근저당권 설정").response_metadata["routing"]["expert"] == "legal"
    off = router.invoke("오늘 점심 뭐 먹지?").response_metadata["routing"]
    assert (off["expert"], off["reason"]) == ("general", "low_confidence")
    assert router.record_feedback(off["request_id"], "tax")["label"] == "tax"
    with pytest.raises(ValidationError, match="unknown own-.* domain 'Law'.*calculus, property"):
        RouterConfig.model_validate(
            {
                "classifier": {"model": str(out)},
                "experts": [{"name": "x", "domains": ["Law"]}],
                "fallback": {"name": "general"},
            }
        )


def test_keep_kmmlu_adds_the_own_domains_to_the_base_subjects(tiny_base, tmp_path):
    routes = [Route.model_validate(route) for route in ROUTES["domains"]]
    spec = RoutesFile(domains=routes, keep_kmmlu=True)
    classifier = DomainClassifier.fit_domains(spec, output_dir=tmp_path / "m", base=tiny_base)
    base = DomainClassifier.from_pretrained(tiny_base)
    assert classifier.labels == ["calculus", "property", "tax", *base.labels]
    taxonomy = classifier.taxonomy
    assert taxonomy.group_of("Math") == "STEM" and taxonomy.group_of("tax") is None
    assert taxonomy.display("Math") == "Math (수학)"
    # The base head still speaks: what the own head leaves goes to its (biased) subject.
    kmmlu = [s for s in classifier.invoke("오늘 점심 뭐 먹지?").top_k if s.label in base.labels]
    assert kmmlu and kmmlu[0].label == "Math"
    config = RouterConfig.model_validate(
        {
            "classifier": {"model": str(tmp_path / "m")},
            "experts": [
                {"name": "stem", "supercategories": ["STEM"]},
                {"name": "tax", "domains": ["tax", "Taxation"]},
            ],
            "fallback": {"name": "general"},
        }
    )
    assert config.expert_for_domain("Math").name == "stem"
    with pytest.raises(ValueError, match=r"domains \['Math'\] are already labels"):
        fit_domains(
            {"domains": [{**ROUTES["domains"][0], "name": "Math"}], "keep_kmmlu": True},
            tmp_path / "clash",
            base=tiny_base,
        )


def test_feedback_rows_join_the_examples(encoder_base, tmp_path):
    feedback = tmp_path / "feedback.jsonl"
    rows = [
        {"text": "법인세 언제 내요", "label": "tax", "predicted": "property"},
        {"text": "근저당권 말소", "label": "property", "predicted": "tax"},
    ]
    feedback.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    report = fit_domains(ROUTES, tmp_path / "m", base=encoder_base, feedback=feedback)
    assert report.examples == {"calculus": 6, "property": 6, "tax": 6}
    feedback.write_text(json.dumps({"text": "환불", "label": "taxx"}) + "\n")
    with pytest.raises(ValueError, match="row 1 has label 'taxx'.*did you mean 'tax'"):
        fit_domains(ROUTES, tmp_path / "n", base=encoder_base, feedback=feedback)


def _domain(name: str, examples: list[str]) -> dict[str, object]:
    return {"name": name, "examples": examples}


FIVE = ["하나", "둘", "셋", "넷", "다섯"]


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"domains": [{"name": "a"}]}, "domains.0.examples\n  Field required"),
        ({"domains": [_domain("a", FIVE[:4])]}, "should have at least 5 items"),
        ({"domains": [_domain("a", [*FIVE[:4], "하나"])]}, "at least 5 different examples"),
        ({"domains": [_domain("a", FIVE), _domain("a", FIVE)]}, "duplicate names ['a']"),
        ({"domains": [_domain("a", [*FIVE, "  "])]}, "examples[5] is an empty string"),
        ({"domains": [_domain("", FIVE)]}, "domains.0.name"),
        ({"domains": [_domain("a", FIVE)], "out_of_scope": [""]}, "out_of_scope[0] is an empty"),
        ({"domains": []}, "domains\n  List should have at least 1 item"),
        ({"domains": [_domain("a", FIVE)], "extra": 1}, "extra\n  Extra inputs"),
    ],
)
def test_bad_routes_get_clear_errors(routes, message):
    with pytest.raises(ValidationError) as info:
        RoutesFile.load(routes)
    assert message in str(info.value)


def test_bad_routes_files_fail_the_command_with_one_line(tmp_path, capsys):
    huge = tmp_path / "huge.yaml"
    huge.write_text("domains:\n" + "# padding\n" * (10_000_000 // 10), encoding="utf-8")
    assert huge.stat().st_size > MAX_ROUTES_BYTES
    assert main(["fit-domains", str(huge), "--output-dir", str(tmp_path / "m")]) == 2
    assert "is 10.0 MB; a routes file may hold at most 2 MB" in capsys.readouterr().err
    assert main(["fit-domains", str(tmp_path / "none.yaml"), "--output-dir", "x"]) == 2
    assert "routes file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("domains:\n  - name: a\n    examples: [x, y]\n", encoding="utf-8")
    assert main(["fit-domains", str(bad), "--output-dir", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "domains.0.examples" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()

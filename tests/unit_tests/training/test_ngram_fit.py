"""``fit-ngrams``: a trained classifier gains a fitted character n-gram branch in its graph."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

import torch

from langchain_domain_router.classifier import TorchBackend
from langchain_domain_router.classifier._chars import CHAR_IDS, char_ids
from langchain_domain_router.training import main
from langchain_domain_router.training._inference import load_model_dir
from langchain_domain_router.training._ngram_fit import bag_features, source_counts

TINY = "--layers 1 --hidden 32 --heads 2 --embedding 16 --intermediate 64 --vocab-size 300"
BUCKETS = 4096


@pytest.fixture(scope="module")
def base_model(tiny_shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("base")
    args = ["train", "--shared", str(tiny_shared), "--output-dir", str(run), "--epochs", "1"]
    assert main([*args, *TINY.split(), "--batch-size", "8", "--threads", "1", "--no-onnx"]) == 0
    return run / "model"


@pytest.fixture(scope="module", params=[(), (1, 2)], ids=["characters", "characters+tokens"])
def fitted(
    base_model: Path,
    tiny_shared: Path,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("ngrams")
    args = ["fit-ngrams", "--shared", str(tiny_shared), "--model", str(base_model)]
    args += ["--output-dir", str(out), "--buckets", str(BUCKETS), "--dim", "8"]
    args += ["--token-orders", *map(str, request.param)]
    assert main(args) == 0
    return base_model, out / "model"


def test_saved_model_reads_characters_and_keeps_the_base(fitted: tuple[Path, Path]) -> None:
    base_dir, folder = fitted
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "domain-router-encoder"
    assert config["ngram_input"] == CHAR_IDS and config["ngram_buckets"] == BUCKETS
    assert config["base_classifier"]["model_type"] == "electra"
    assert config["domain_router"]["model_version"].endswith("+ngrams")
    info = json.loads((folder / "training_info.json").read_text())["ngram_fit"]
    assert info["branch_weight"] > 0 and 0 <= info["validation_accuracy"]["sum"] <= 1
    export = json.loads((folder / "onnx" / "export.json").read_text())
    assert export["inputs"] == ["input_ids", "attention_mask", CHAR_IDS]

    model, tokenizer, _ = load_model_dir(folder)
    base, _, _ = load_model_dir(base_dir)
    texts = ["함수 미분 적분 문제", "조선 왕조 세종 질문"]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    enc.pop("token_type_ids", None)
    codes = torch.from_numpy(char_ids(texts, 512))
    with torch.no_grad():
        total = model(**enc, char_ids=codes).logits
        alone = base(**enc).logits
        branch = model.ngram_logits(enc["input_ids"], enc["attention_mask"], codes)
    # The encoder is the trained model, unchanged (saved in fp16): the sum adds the branch.
    torch.testing.assert_close(total, alone + branch, atol=2e-2, rtol=1e-2)
    assert float(branch.abs().max()) > 0
    with pytest.raises(ValueError, match="pass char_ids"):
        model(**enc)


def test_graph_branch_equals_the_fitted_features(fitted: tuple[Path, Path]) -> None:
    _, folder = fitted
    model, tokenizer, _ = load_model_dir(folder)
    hashing = TorchBackend.from_model(model, tokenizer)
    texts = ["감가상각 회계 기준 문제", "What is a matrix eigenvalue?", "세금"]
    counts = source_counts(texts, hashing)
    # One bag per source: characters, then tokens when the branch reads them too.
    assert len(counts) == 1 + bool(model.config.ngram_token_orders)
    idf = model.ngram_idf.numpy()
    features = bag_features(counts, idf).toarray()
    table = (
        model.ngram_embeddings.weight.detach().numpy()
        @ model.ngram_classifier.weight.detach().numpy().T
    )
    expected = features @ table + model.ngram_classifier.bias.detach().numpy()
    batch = hashing.tokenizer.encode(texts)
    encoded = {key: torch.from_numpy(value) for key, value in batch.items()}
    with torch.no_grad():
        got = model.ngram_logits(
            encoded["input_ids"], encoded["attention_mask"], encoded[CHAR_IDS]
        ).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=1e-3)
    assert all(source[:, 0].nnz == 0 for source in counts)  # bucket 0 is padding


def test_token_ngrams_hash_apart_from_characters() -> None:
    from langchain_domain_router.classifier.modeling import TOKEN_SALT, hashed_ngrams

    ids = torch.tensor([[104, 105, 33]])
    mask = torch.ones_like(ids)
    plain = hashed_ngrams(ids, mask, (1, 2), BUCKETS)
    salted = hashed_ngrams(ids, mask, (1, 2), BUCKETS, salt=TOKEN_SALT)
    assert plain.shape == salted.shape == (1, 6)
    assert not set(plain[plain != 0].tolist()) & set(salted[salted != 0].tolist())


def test_both_backends_route_the_fitted_model_alike(fitted: tuple[Path, Path]) -> None:
    from langchain_domain_router import DomainClassifier

    _, folder = fitted
    texts = ["함수 미분 적분", "조선 왕조 세종", "재무제표 자산 부채 문제"]
    torch_path = DomainClassifier.from_pretrained(str(folder), backend="torch")
    onnx_path = DomainClassifier.from_pretrained(str(folder), backend="onnx", quantize="float32")
    a = torch_path.predict_logits(texts)
    b = onnx_path.predict_logits(texts)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_train_refuses_to_fine_tune_a_character_branch(
    fitted: tuple[Path, Path], tiny_shared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--shared", str(tiny_shared), "--base", str(fitted[1])]
    assert main([*args, "--output-dir", str(tmp_path), "--epochs", "1", "--no-onnx"]) == 2
    assert "run fit-ngrams again" in capsys.readouterr().err


def test_branch_weight_follows_what_the_branch_knows() -> None:
    from langchain_domain_router.training._ngram_fit import choose_weight

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=400)
    informed = np.eye(4)[labels] * 2 - 1 + rng.normal(0, 0.5, size=(400, 4))
    noise = rng.normal(0, 1, size=(400, 4))
    useful, losses = choose_weight(noise, informed, labels)
    useless, _ = choose_weight(informed * 3, noise, labels)
    assert useful > useless and useless == min(losses)
    assert losses[useful] == min(losses.values())

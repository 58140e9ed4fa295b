import json
from pathlib import Path

import numpy as np
import pytest

from langchain_domain_router.taxonomy import KMMLU_DOMAINS

# Training needs the [train] extra (scikit-learn, matplotlib); the core install does not.
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from langchain_domain_router.classifier import CALIBRATION_KEY
from langchain_domain_router.classifier import probabilities as softmax
from langchain_domain_router.training import main
from langchain_domain_router.training._calibration import (
    choose_min_confidence,
    fit_temperature,
)
from langchain_domain_router.training._data import DataError
from langchain_domain_router.training._inference import load_model_dir

TINY = [
    "--layers",
    "1",
    "--hidden",
    "32",
    "--heads",
    "2",
    "--embedding",
    "16",
    "--intermediate",
    "64",
    "--vocab-size",
    "300",
    "--batch-size",
    "8",
    "--threads",
    "1",
]


def _train(shared: Path, run: Path, *extra: str) -> int:
    return main(["train", "--shared", str(shared), "--output-dir", str(run), *extra])


@pytest.fixture(scope="module")
def trained(tiny_shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    assert _train(tiny_shared, run, "--epochs", "2", *TINY) == 0
    return run


def test_train_writes_the_runtime_contract(trained: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = trained / "model"
    config = json.loads((folder / "config.json").read_text())
    assert config["problem_type"] == "single_label_classification"
    assert set(config["id2label"].values()) == set(KMMLU_DOMAINS)
    settings = config[CALIBRATION_KEY]
    assert set(settings) >= {
        "temperature",
        "min_confidence",
        "min_margin",
        "model_version",
        "max_length",
    }
    assert settings["temperature"] > 0
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    assert str(model.dtype) == "torch.float32"  # stored fp16, runs fp32
    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(
        ["감가상각 질문"], truncation=True, max_length=settings["max_length"], return_tensors="pt"
    )
    enc.pop("token_type_ids", None)
    assert model(**enc).logits.shape == (1, len(KMMLU_DOMAINS))
    history = json.loads((trained / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"train_loss", "val_loss", "val_accuracy", "val_macro_f1"} <= set(history[0])


def test_resume_after_finish_does_not_retrain(trained: Path, tiny_shared: Path) -> None:
    before = json.loads((trained / "history.json").read_text())
    assert _train(tiny_shared, trained, "--epochs", "2", *TINY) == 0
    assert json.loads((trained / "history.json").read_text()) == before


def test_evaluate_writes_report(trained: Path, tiny_shared: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "evaluate",
                "--shared",
                str(tiny_shared),
                "--model",
                str(trained / "model"),
                "--report-dir",
                str(tmp_path),
                "--threads",
                "1",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert {t["target"] for t in report["targets"]} >= {"kmmlu_accuracy", "ood_auroc"}
    assert 0 <= report["ood"]["auroc"] <= 1
    for png in ("confusion_matrix", "reliability", "confidence_hist", "ood_predicted_subjects"):
        assert (tmp_path / f"{png}.png").stat().st_size > 0


def test_fine_tune_a_local_base_checkpoint(
    trained: Path, tiny_shared: Path, tmp_path: Path
) -> None:
    # The --base path (e.g. monologg/koelectra-base-v3-discriminator) on a local checkpoint.
    assert (
        _train(
            tiny_shared,
            tmp_path,
            "--base",
            str(trained / "model"),
            "--epochs",
            "1",
            "--distill",
            "0",
            "--batch-size",
            "8",
            "--threads",
            "1",
        )
        == 0
    )
    model, _, settings = load_model_dir(tmp_path / "model")
    assert model.config.num_labels == len(KMMLU_DOMAINS)
    assert settings.max_length == 64


def test_model_dir_with_bad_labels_is_rejected(trained: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(trained / "model", tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["id2label"] = {str(i): f"Cooking-{i}" for i in range(len(config["id2label"]))}
    config["label2id"] = {v: int(k) for k, v in config["id2label"].items()}
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match=r"config\.json.*KMMLU subjects"):
        load_model_dir(tmp_path / "m")
    with pytest.raises(DataError, match="no config.json"):
        load_model_dir(tmp_path / "absent")


def test_calibrate_refits_the_block_of_a_saved_model(
    trained: Path, tiny_shared: Path, tmp_path: Path
) -> None:
    import shutil

    from langchain_domain_router import DomainClassifier

    folder = shutil.copytree(trained / "model", tmp_path / "model")
    before = json.loads((folder / "config.json").read_text())
    args = ["calibrate", "--shared", str(tiny_shared), "--model", str(folder)]
    assert main([*args, "--model-version", "recalibrated"]) == 0
    after = json.loads((folder / "config.json").read_text())
    block = after.pop(CALIBRATION_KEY)
    assert after == {k: v for k, v in before.items() if k != CALIBRATION_KEY}
    assert block["model_version"] == "recalibrated"
    assert block["max_length"] == before[CALIBRATION_KEY]["max_length"]
    assert block["confidence_slope"] > 0
    classifier = DomainClassifier.from_pretrained(folder)
    assert classifier.calibration.confidence_slope == block["confidence_slope"]
    assert main(["calibrate", "--model", str(folder)]) == 2  # no validation rows
    no_ood = ["--kmmlu", str(tiny_shared / "kmmlu"), "--synthetic", str(tiny_shared / "synthetic")]
    assert main(["calibrate", *no_ood, "--model", str(folder)]) == 2
    assert json.loads((folder / "config.json").read_text())[CALIBRATION_KEY] == block


def test_cli_reports_data_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--kmmlu", str(tmp_path), "--output-dir", str(tmp_path / "r")]) == 2
    assert str(tmp_path) in capsys.readouterr().err


def test_temperature_recovers_a_known_scale() -> None:
    rng = np.random.default_rng(0)
    true = rng.normal(size=(4000, 5)) * 2
    labels = np.array([rng.choice(5, p=p) for p in softmax(true)])
    assert fit_temperature(true * 3, labels) == pytest.approx(3, rel=0.1)


def test_min_confidence_separates_in_and_out() -> None:
    threshold = choose_min_confidence(np.full(100, 0.9), np.full(100, 0.1))
    assert 0.1 < threshold < 0.9


def test_warm_start_puts_subject_statistics_in_embeddings() -> None:
    from langchain_domain_router.training._model import ModelSize, build_scratch_model, warm_start

    labels = list(KMMLU_DOMAINS)
    model = build_scratch_model(labels, 20, ModelSize(1, 64, 2, 48, 64), 16)
    # token 5 only ever appears with label 0, token 6 only with label 1
    warm_start(model, [[2, 5, 3]] * 20 + [[2, 6, 3]] * 20, [0] * 20 + [1] * 20)
    emb = model.electra.embeddings.word_embeddings.weight
    assert emb[5, 0] > emb[5, 1] and emb[6, 1] > emb[6, 0]
    assert (
        float(model.electra.encoder.layer[0].attention.self.query.weight.detach().abs().sum()) == 0
    )


def test_baseline_scores_the_floor_on_the_same_splits(
    tiny_shared: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["baseline", "--shared", str(tiny_shared)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0 <= report["kmmlu_test"]["accuracy"] <= 1
    assert set(report["synthetic_test"]["per_style_accuracy"]) == {
        "conversational",
        "exam",
        "keyword",
        "english",
    }


def test_teacher_soft_targets_only_for_kmmlu_rows(trained: Path, tiny_shared: Path) -> None:
    from langchain_domain_router.training._splits import DataSources, load_bundle
    from langchain_domain_router.training._train import _teacher_targets

    rows = load_bundle(DataSources.shared(tiny_shared), with_test=False).train
    label2id = {label: i for i, label in enumerate(KMMLU_DOMAINS)}
    # The module's run cached its cross-fitted scores for these same rows.
    targets = _teacher_targets(rows, label2id, 3, 0, trained)
    assert targets.shape == (len(rows), len(KMMLU_DOMAINS))
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-5)
    for row, target in zip(rows, targets, strict=True):
        if not row.is_kmmlu:
            assert target[label2id[row.label]] == 1.0
    kmmlu = np.array([r.is_kmmlu for r in rows])
    scores = np.load(trained / "teacher_scores.npy")
    y = np.array([label2id[r.label] for r in rows])
    teacher = softmax(scores, fit_temperature(scores, y))
    assert kmmlu.any()
    np.testing.assert_allclose(targets[kmmlu], teacher[kmmlu], rtol=1e-5, atol=1e-7)

"""Ensembles: model directories of one taxonomy loaded as one classifier.

Real tiny checkpoints (``build_checkpoint``: logits set by the output bias), exported to
ONNX, combined by ``write_ensemble``: the ensemble's logits must be the weighted sum of
the members' log-softmax outputs on both backends, its features the named member's, and
every malformed ensemble must fail with a clear error.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("torch")

from langchain_domain_router import KMMLU_DOMAINS, DomainClassifier
from langchain_domain_router.classifier import EnsembleSpec, export_onnx, write_ensemble
from langchain_domain_router.classifier._ensemble import features_model_path
from tests.conftest import build_checkpoint

TEXTS = ["미분이란?", "민법상 채권자대위권의 요건은?", "세금"]


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("members")
    a = build_checkpoint(root / "a", bias={"Math": 3.0, "Law": 1.0})
    b = build_checkpoint(root / "b", bias={"Law": 2.5, "Taxation": 0.5})
    for folder in (a, b):
        export_onnx(folder)
    return a, b


def test_its_logits_are_the_weighted_sum_of_the_members_log_probabilities(members, tmp_path):
    a, b = members
    out = write_ensemble([(a, 0.25), (b, 0.75)], tmp_path / "ens", model_version="ens-test")
    logits = {m: DomainClassifier.from_pretrained(m).predict_logits(TEXTS) for m in members}
    expected = 0.25 * _log_softmax(logits[a]) + 0.75 * _log_softmax(logits[b])
    for backend in ("onnx", "torch"):
        classifier = DomainClassifier.from_pretrained(out, backend=backend)
        np.testing.assert_allclose(classifier.predict_logits(TEXTS), expected, atol=1e-4)
    classifier = DomainClassifier.from_pretrained(out)
    assert classifier.invoke("미분이란?").label == "Law"  # 0.25 * 3 for Math < 0.25 + 0.75 * 2.5
    assert classifier.model_version == "ens-test"
    assert classifier.labels == list(KMMLU_DOMAINS)


def test_it_is_self_contained_and_reads_its_features_from_the_named_member(members, tmp_path):
    a, b = members
    write_ensemble([(a, 1.0), (b, 1.0)], tmp_path / "built", features=1)
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "built", moved)  # the member paths are relative
    assert features_model_path(str(moved)) == str(moved / "member-1")
    got = DomainClassifier.from_pretrained(moved, backend="torch").features(TEXTS)
    want = DomainClassifier.from_pretrained(b, backend="torch").features(TEXTS)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_auto_runs_onnx_only_when_every_member_is_exported(members, tmp_path):
    out = write_ensemble([(m, 1.0) for m in members], tmp_path / "ens")
    assert DomainClassifier.from_pretrained(out).resolved_backend == "onnx"
    shutil.rmtree(out / "member-1" / "onnx")
    assert DomainClassifier.from_pretrained(out).resolved_backend == "torch"


def test_a_member_shipped_as_onnx_only_runs_on_onnx_when_torch_is_asked(members, tmp_path):
    a, b = members
    graph_only = tmp_path / "graph-only"
    shutil.copytree(a, graph_only)
    (graph_only / "model.safetensors").unlink()
    out = write_ensemble([(graph_only, 1.0), (b, 1.0)], tmp_path / "ens")
    backend = DomainClassifier.from_pretrained(out, backend="torch").load().loaded_backend
    assert [member.name for member in backend.members] == ["onnx", "torch"]
    assert DomainClassifier.from_pretrained(out, backend="torch").invoke("세금").label == "Law"


def test_without_a_features_member_it_says_so(members, tmp_path):
    out = write_ensemble([(m, 1.0) for m in members], tmp_path / "ens")
    with pytest.raises(ValueError, match="names no `features` member"):
        features_model_path(str(out))
    with pytest.raises(ValueError, match="names no `features` member"):
        DomainClassifier.from_pretrained(out).features(TEXTS)


def test_members_with_other_labels_are_refused(members, tmp_path):
    other = build_checkpoint(tmp_path / "other", labels=["Math", "Law"])
    with pytest.raises(ValueError, match="labels differ"):
        write_ensemble([(members[0], 1.0), (other, 1.0)], tmp_path / "ens")
    with pytest.raises(ValueError, match="exists"):
        write_ensemble([(m, 1.0) for m in members], tmp_path / "other")
    with pytest.raises(ValueError, match="not a model directory"):
        write_ensemble([(members[0], 1.0), (tmp_path / "absent", 1.0)], tmp_path / "ens2")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(members=c["members"][:1]), "malformed ensemble"),
        (lambda c: c.update(features="member-7"), "not one of the members"),
        (lambda c: c["members"].append(c["members"][0]), "listed twice"),
        (lambda c: c["members"][0].update(weight=0), "malformed ensemble"),
    ],
)
def test_a_malformed_ensemble_config_fails_clearly(members, tmp_path, change, message):
    out = write_ensemble([(m, 1.0) for m in members], tmp_path / "ens")
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    change(config)
    (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        EnsembleSpec.read(out)
    with pytest.raises(ValueError, match=message):
        DomainClassifier.from_pretrained(out).load()


def test_a_missing_or_mismatched_member_fails_at_load(members, tmp_path):
    out = write_ensemble([(m, 1.0) for m in members], tmp_path / "ens")
    shutil.rmtree(out / "member-1")
    with pytest.raises(ValueError, match="member .*member-1.* is not a directory"):
        DomainClassifier.from_pretrained(out).load()
    shutil.copytree(build_checkpoint(tmp_path / "few", labels=["Math", "Law"]), out / "member-1")
    export_onnx(out / "member-1")
    with pytest.raises(ValueError, match="other labels than the ensemble"):
        DomainClassifier.from_pretrained(out).load()


def test_fit_domains_on_an_ensemble_builds_on_its_features_member(tmp_path):
    from langchain_domain_router.classifier import fit_domains
    from tests.unit_tests.test_fit_domains import ROUTES, build_encoder

    texts = [text for route in ROUTES["domains"] for text in route["examples"]]
    encoder = build_encoder(tmp_path / "encoder", texts)
    export_onnx(encoder)
    surface = build_checkpoint(tmp_path / "surface", bias={"Math": 1.0})
    export_onnx(surface)
    ensemble = write_ensemble([(surface, 1.0), (encoder, 1.0)], tmp_path / "ens", features=1)
    routes = tmp_path / "routes.yaml"
    routes.write_text(yaml.safe_dump(ROUTES, allow_unicode=True), encoding="utf-8")
    report = fit_domains(routes, tmp_path / "own", base=ensemble)
    own = DomainClassifier.from_pretrained(report.model_dir)
    assert own.labels[: len(ROUTES["domains"])] == [r["name"] for r in ROUTES["domains"]]
    np.testing.assert_allclose(
        own.features(texts[:3]),
        DomainClassifier.from_pretrained(encoder).features(texts[:3]),
        atol=1e-4,
    )

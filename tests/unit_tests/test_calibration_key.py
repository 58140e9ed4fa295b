"""Saved models keep their routing block under ``CALIBRATION_KEY``, not under a name.

The block (temperature, label bias, confidence map, thresholds, model version, taxonomy)
sits in each model's ``config.json`` under one key. The key is part of the file format: the
router's or the graph's name (``ROUTER_NAME``) can change without a saved model losing it.
"""

import json

import pytest

from langchain_domain_router.classifier import CALIBRATION_KEY, Calibration, default_model_path
from langchain_domain_router.classifier._onnx import LightConfig

SHIPPED = default_model_path()


def _shipped_config() -> dict:
    return json.loads((SHIPPED / "config.json").read_text(encoding="utf-8"))


def test_the_key_is_the_one_every_saved_model_was_written_with():
    # Models saved so far (the shipped one too) hold their block under this key; another
    # value would leave each of them with the default calibration, silently.
    assert CALIBRATION_KEY == "domain_router"


def test_the_shipped_model_calibration_is_found_under_the_key():
    config = _shipped_config()
    block = config[CALIBRATION_KEY]
    calibration = Calibration.of(config)
    assert calibration != Calibration()  # read from the block, not the defaults
    assert calibration.temperature == block["temperature"] != 1.0
    assert calibration.model_version == block["model_version"]
    assert calibration.label_bias == block["label_bias"]
    # The ONNX path reads config.json without transformers, through the same key.
    assert Calibration.of(LightConfig.read(SHIPPED)) == calibration


def test_the_torch_path_finds_it_too():
    pytest.importorskip("torch")
    from langchain_domain_router import DomainClassifier

    # The shipped model is an ensemble: its own config.json holds the block, whichever
    # backend runs the members.
    classifier = DomainClassifier.from_pretrained(SHIPPED, backend="torch").load()
    assert classifier.resolved_backend == "torch"
    assert classifier.calibration == Calibration.of(_shipped_config())


def test_a_transformers_config_holds_it_under_the_key(tmp_path):
    pytest.importorskip("torch")
    from transformers import AutoConfig

    import langchain_domain_router.classifier.modeling  # noqa: F401  (registers the model type)

    member = SHIPPED / _shipped_config()["features"]
    config = AutoConfig.from_pretrained(member)
    raw = json.loads((member / "config.json").read_text(encoding="utf-8"))
    assert Calibration.of(config) == Calibration.of(raw) != Calibration()

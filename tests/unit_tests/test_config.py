import json

import pytest
from pydantic import ValidationError

from langchain_domain_router import KMMLU_DOMAINS, ExpertProfile, RouterConfig

YAML = """
min_confidence: 0.35
experts:
  - name: law
    model: openai:gpt-4o
    domains: [Law, Criminal-Law]
    input_cost_per_1m: 2.5
  - name: stem
    supercategories: [STEM]
fallback:
  name: general
  model: openai:gpt-4o-mini
"""


def test_example_config_covers_all_45_domains():
    config = RouterConfig.example()
    assert all(config.expert_for_domain(domain) for domain in KMMLU_DOMAINS)
    assert 3 <= len(config.experts) <= 8


def test_loads_yaml_toml_and_json_alike(tmp_path):
    import yaml

    data = yaml.safe_load(YAML)
    (tmp_path / "r.yaml").write_text(YAML)
    (tmp_path / "r.json").write_text(json.dumps(data))
    (tmp_path / "r.toml").write_text(
        'min_confidence = 0.35\n[fallback]\nname = "general"\nmodel = "openai:gpt-4o-mini"\n'
        '[[experts]]\nname = "law"\nmodel = "openai:gpt-4o"\ndomains = ["Law", "Criminal-Law"]\n'
        "input_cost_per_1m = 2.5\n"
        '[[experts]]\nname = "stem"\nsupercategories = ["STEM"]\n'
    )
    configs = [RouterConfig.from_file(tmp_path / name) for name in ("r.yaml", "r.json", "r.toml")]
    assert configs[0] == configs[1] == configs[2]
    assert configs[0].expert_for_domain("Criminal-Law").name == "law"
    assert configs[0].expert_for_domain("Math").name == "stem"
    assert configs[0].expert_for_domain("Taxation") is None


def test_priority_breaks_ties_and_domains_beat_supercategories():
    config = RouterConfig(
        experts=[
            {"name": "a", "domains": ["Math"]},
            {"name": "b", "domains": ["Math"], "priority": 1},
            {"name": "c", "supercategories": ["STEM"]},
        ],
        fallback={"name": "g"},
    )
    assert config.expert_for_domain("Math").name == "b"
    assert config.expert_for_domain("Physics") is None
    assert config.expert_for_domain("Chemistry").name == "c"


@pytest.mark.parametrize(
    ("data", "where", "what"),
    [
        (
            {"experts": [{"name": "x", "domains": ["Mathematics"]}], "fallback": {"name": "g"}},
            "",
            "experts.0.domains: unknown KMMLU domain 'Mathematics'",
        ),
        (
            {
                "experts": [{"name": "x", "domains": ["Math"]}, {"name": "y", "domains": ["Math"]}],
                "fallback": {"name": "g"},
            },
            "",
            "experts.domains: 'Math' is claimed by ['x', 'y']",
        ),
        (
            {
                "experts": [
                    {"name": "x", "supercategories": ["STEM"]},
                    {"name": "y", "supercategories": ["STEM"]},
                ],
                "fallback": {"name": "g"},
            },
            "",
            "experts.supercategories: 'STEM' is claimed",
        ),
        ({"experts": []}, "fallback", "Field required"),
        (
            {"experts": [{"name": "x", "supercategories": ["Science"]}], "fallback": {"name": "g"}},
            "",
            "experts.0.supercategories: unknown KMMLU group 'Science'",
        ),
        ({"fallback": {"name": "g", "timeout_s": 0}}, "fallback.timeout_s", "greater than 0"),
        (
            {"fallback": {"name": "g"}, "min_confidence": 1.5},
            "min_confidence",
            "less than or equal",
        ),
        ({"fallback": {"name": "g"}, "thresold": 0.5}, "thresold", "Extra inputs"),
        ({"experts": [{"name": "general"}], "fallback": {"name": "g"}}, "", "reserved"),
        ({"experts": [{"name": "a b"}], "fallback": {"name": "g"}}, "experts.0.name", "pattern"),
        ({"experts": [{"name": "a"}, {"name": "a"}], "fallback": {"name": "g"}}, "", "duplicate"),
    ],
)
def test_validation_errors_name_the_offending_field(data, where, what):
    with pytest.raises(ValidationError) as info:
        RouterConfig.model_validate(data)
    error = info.value.errors()[0]
    assert ".".join(str(part) for part in error["loc"]) == where
    assert what in str(info.value)


def test_bad_files_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        RouterConfig.from_file(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("experts: [unclosed")
    with pytest.raises(ValueError, match="is not valid YAML"):
        RouterConfig.from_file(tmp_path / "bad.yaml")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="top level must be a mapping"):
        RouterConfig.from_file(tmp_path / "list.json")
    (tmp_path / "r.ini").write_text("x=1")
    with pytest.raises(ValueError, match="unknown config format"):
        RouterConfig.from_file(tmp_path / "r.ini")


def test_profile_prices_tokens():
    profile = ExpertProfile(name="x", input_cost_per_1m=3.0, output_cost_per_1m=15.0)
    (option,) = profile.options()
    assert option.estimate_cost(1_000_000, 100_000) == pytest.approx(4.5)
    assert option.blended_cost_per_1m == 18.0


@pytest.mark.parametrize("name", ["out.yaml", "out.json"])
def test_to_file_round_trips(tmp_path, name):
    config = RouterConfig.example().model_copy(update={"min_confidence": 0.3})
    path = config.to_file(tmp_path / name)
    assert RouterConfig.from_file(path) == config


def test_to_file_refuses_model_instances_and_unknown_formats(tmp_path):
    from langchain_core.language_models import FakeListChatModel

    config = RouterConfig(
        fallback=ExpertProfile(name="g", model=FakeListChatModel(responses=["x"]))
    )
    with pytest.raises(ValueError, match="cannot be written"):
        config.to_file(tmp_path / "c.yaml")
    with pytest.raises(ValueError, match="can only write"):
        RouterConfig.example().to_file(tmp_path / "c.toml")


def test_classifier_settings_reach_the_classifier(math_checkpoint):
    from langchain_domain_router import DomainClassifier
    from langchain_domain_router.config import ClassifierSettings

    settings = ClassifierSettings(
        model=str(math_checkpoint), batch_size=8, cache_size=16, coalesce_ms=2.0, num_threads=1
    )
    classifier = DomainClassifier.from_settings(settings)
    assert (classifier.batch_size, classifier.cache_size, classifier.coalesce_ms) == (8, 16, 2.0)
    assert classifier.num_threads == 1 and classifier.backend == "auto"
    assert classifier.resolved_backend == "torch"  # no ONNX export in this directory
    assert classifier.invoke("미분").label == "Math"


def test_every_classifier_option_is_settable_from_a_config_file(math_checkpoint, tmp_path):
    from langchain_domain_router import ClassifierSettings, DomainClassifier
    from langchain_domain_router.classifier import ClassifierOptions

    assert set(ClassifierSettings.model_fields) == {*ClassifierOptions.model_fields, "model"}
    assert {*ClassifierOptions.model_fields, "model_path"} <= set(DomainClassifier.model_fields)
    path = tmp_path / "r.yaml"
    path.write_text(
        f"fallback: {{name: general}}\nclassifier: {{model: {math_checkpoint}, top_k: 2, "
        "max_chars: 40}\n",
        encoding="utf-8",
    )
    classifier = DomainClassifier.from_settings(RouterConfig.load(path).classifier)
    assert (classifier.top_k, classifier.max_chars) == (2, 40)
    assert len(classifier.invoke("미분").top_k) == 2


def test_one_calibration_default_for_every_reader(make_checkpoint):
    from langchain_domain_router import DomainClassifier, ExpertProfile, build_router_graph
    from langchain_domain_router.classifier import Calibration
    from tests.conftest import fake_expert

    bare = DomainClassifier.from_pretrained(make_checkpoint(domain_router={"model_version": "b"}))
    assert bare.calibration == Calibration(model_version="b")
    assert (bare.temperature, bare.model_version) == (1.0, "b")
    config = RouterConfig(fallback=ExpertProfile(name="general", model=fake_expert("답")))
    graph = build_router_graph(config, classifier=bare)
    routing = graph.invoke({"question": "미분"})["routing"]
    assert routing["min_confidence"] == Calibration().min_confidence == 0.5

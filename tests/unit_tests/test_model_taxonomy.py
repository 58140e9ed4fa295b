"""The taxonomy comes from the checkpoint: labels, display names, groups, and validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from langchain_domain_router import (
    DomainClassifier,
    DomainRouter,
    ExpertProfile,
    FeedbackStore,
    RouterConfig,
    Taxonomy,
)
from langchain_domain_router.data import DataError, check_label

OWN = {
    "display_names": {"finance": "재무", "travel": "여행"},
    "groups": {"finance": "money", "billing": "money", "travel": "leisure"},
    "model_version": "own-test",
}


@pytest.fixture
def own_model(make_checkpoint):
    return make_checkpoint(
        labels=["finance", "billing", "travel"], bias={"finance": 3.0}, domain_router=OWN
    )


def test_taxonomy_read_from_the_checkpoint(own_model):
    classifier = DomainClassifier.from_pretrained(own_model)
    taxonomy = classifier.taxonomy
    assert taxonomy == Taxonomy.of_model(own_model)
    assert taxonomy.labels == ("finance", "billing", "travel")
    assert taxonomy.group_names == ("money", "leisure")
    assert taxonomy.display("finance") == "finance (재무)"
    assert taxonomy.display("billing") == "billing"
    prediction = classifier.invoke("적금이랑 예금 중에 뭐가 나아요?")
    assert prediction.label == "finance" and prediction.supercategory == "money"
    assert set(prediction.supercategory_scores) == {"money", "leisure"}
    money = prediction.top_k[0].score + next(
        s.score for s in prediction.top_k if s.label == "billing"
    )
    assert prediction.supercategory_scores["money"] == pytest.approx(money)


def test_a_kmmlu_checkpoint_without_groups_gets_the_kmmlu_taxonomy(make_checkpoint):
    taxonomy = Taxonomy.of_model(make_checkpoint())
    assert taxonomy == Taxonomy.kmmlu()
    assert taxonomy.group_names == ("STEM", "Applied Science", "HUMSS", "Other")
    assert taxonomy.display("Math") == "Math (수학)"
    mixed = Taxonomy.of_model(make_checkpoint(labels=["Law", "Math", "NotAKmmluLabel"]))
    assert mixed.group_of("Law") == "HUMSS" and mixed.group_of("NotAKmmluLabel") is None


def test_config_checks_names_against_the_loaded_model(own_model):
    def config(**expert: object) -> dict[str, object]:
        return {
            "classifier": {"model": str(own_model)},
            "experts": [{"name": "x", **expert}],
            "fallback": {"name": "g"},
        }

    good = RouterConfig.model_validate(config(domains=["finance"], supercategories=["leisure"]))
    assert good.taxonomy is not None and good.expert_for_domain("travel").name == "x"
    with pytest.raises(ValidationError) as info:
        RouterConfig.model_validate(config(domains=["finanse"]))
    text = str(info.value)
    assert "experts.0.domains: unknown own-test domain 'finanse'; did you mean 'finance'?" in text
    assert "the model's: finance, billing, travel" in text
    with pytest.raises(ValidationError, match="unknown own-test group 'STEM'"):
        RouterConfig.model_validate(config(supercategories=["STEM"]))
    with pytest.raises(ValidationError, match=r"candidates.0.quality: unknown own-test domain"):
        RouterConfig.model_validate(config(candidates=[{"model": "m", "quality": {"Law": 0.5}}]))
    # The KMMLU subjects belong to the default model only.
    with pytest.raises(ValidationError, match="unknown KMMLU domain 'finance'"):
        RouterConfig.model_validate({**config(domains=["finance"]), "classifier": {}})


def test_a_classifier_instance_binds_its_taxonomy_at_graph_build(own_model):
    kmmlu_config = RouterConfig(
        experts=[ExpertProfile(name="law", domains=["Law"])], fallback=ExpertProfile(name="g")
    )
    classifier = DomainClassifier.from_pretrained(own_model)
    with pytest.raises(ValueError, match="experts.0.domains: unknown own-test domain 'Law'"):
        DomainRouter.from_config(kmmlu_config, classifier=classifier)
    own = RouterConfig(
        experts=[ExpertProfile(name="money", supercategories=["money"])],
        fallback=ExpertProfile(name="g"),
        min_confidence=0.0,
        classifier={"model": str(own_model)},
    )
    router = DomainRouter.from_config(own, classifier=classifier)
    routing = router.invoke("적금 금리 비교").response_metadata["routing"]
    assert (routing["expert"], routing["supercategory"]) == ("money", "money")
    assert "finance (재무)" in routing["explanation"]
    assert router.config.expert_for_domain("billing").name == "money"
    with pytest.raises(ValueError, match="did you mean 'travel'"):
        router.record_feedback(routing["request_id"], "travl")
    assert router.record_feedback(routing["request_id"], "travel")["misroute"]


def test_feedback_and_training_labels_follow_the_taxonomy(own_model):
    taxonomy = Taxonomy.of_model(own_model)
    store = FeedbackStore(taxonomy=taxonomy)
    assert store.record("r", "billing", question="환불은 언제 되나요?")["label"] == "billing"
    with pytest.raises(ValueError, match="unknown KMMLU domain 'billing'"):
        FeedbackStore().record("r", "billing", question="환불은 언제 되나요?")
    assert check_label("travel", "rows.jsonl", taxonomy) == "travel"
    with pytest.raises(DataError, match="rows.jsonl: unknown KMMLU label 'Mathe'; did you mean"):
        check_label("Mathe", "rows.jsonl")

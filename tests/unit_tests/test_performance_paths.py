"""The speed options give the same labels as the plain path (benchmarks measure speed)."""

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from langchain_core.callbacks import BaseCallbackHandler

from langchain_domain_router import DomainClassifier, DomainPrediction, ExpertProfile
from langchain_domain_router.classifier._onnx import OnnxModel
from tests.conftest import (
    SAMPLE_LINES,
    build_checkpoint,
    count_forwards,
    fake_expert,
    make_config,
)

QUESTIONS = [*SAMPLE_LINES, "민법 채권 미분", "오늘 법인세 점심", "Fourier 냉동기", "실학"]


@pytest.fixture(scope="module")
def varied_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose label depends on the text, with clear margins on QUESTIONS.

    Random weights (std 1) make the [CLS] features differ between texts; the output
    bias then removes their shared part so that the difference decides the label.
    """
    from transformers import ElectraForSequenceClassification

    path = build_checkpoint(tmp_path_factory.mktemp("varied"))
    model = ElectraForSequenceClassification.from_pretrained(path)
    encoded = DomainClassifier.from_pretrained(path).preprocess(QUESTIONS)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "LayerNorm" not in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
        model.classifier.out_proj.bias -= model(**encoded).logits.mean(0)
    model.save_pretrained(path)
    return path


def labels_of(predictions: list[DomainPrediction]) -> list[str]:
    return [p.label for p in predictions]


def assert_same(got: list[DomainPrediction], want: list[DomainPrediction]) -> None:
    """Same labels; scores equal up to float noise (padding changes the sums' order)."""
    assert labels_of(got) == labels_of(want)
    assert [p.score for p in got] == pytest.approx([p.score for p in want], abs=1e-4)


@pytest.fixture(scope="module")
def plain(varied_checkpoint: Path) -> list[DomainPrediction]:
    return [DomainClassifier.from_pretrained(varied_checkpoint).invoke(q) for q in QUESTIONS]


def test_the_varied_checkpoint_really_varies(plain):
    assert len(set(labels_of(plain))) >= 4


async def test_coalesced_ainvoke_matches_the_plain_path_in_fewer_passes(
    varied_checkpoint, plain, monkeypatch
):
    classifier = DomainClassifier.from_pretrained(varied_checkpoint, coalesce_ms=50).load()
    sizes = count_forwards(classifier, monkeypatch)
    results = await asyncio.gather(*(classifier.ainvoke(q) for q in QUESTIONS))
    assert_same(results, plain)
    assert sum(sizes) == len(QUESTIONS)
    assert len(sizes) < len(QUESTIONS)


async def test_coalescing_keeps_bad_inputs_and_failures_to_their_own_caller(
    varied_checkpoint, plain, monkeypatch
):
    classifier = DomainClassifier.from_pretrained(varied_checkpoint, coalesce_ms=20).load()
    original = DomainClassifier.preprocess

    def failing_preprocess(self, texts):
        if "boom" in texts:
            msg = "tokenizer exploded"
            raise RuntimeError(msg)
        return original(self, texts)

    monkeypatch.setattr(DomainClassifier, "preprocess", failing_preprocess)
    results = await asyncio.gather(
        classifier.ainvoke(QUESTIONS[0]),
        classifier.ainvoke(""),
        classifier.ainvoke(3),  # type: ignore[arg-type]
        classifier.ainvoke("boom"),
        classifier.ainvoke(QUESTIONS[1]),
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], TypeError)
    assert isinstance(results[3], RuntimeError)
    assert labels_of([results[0], results[4]]) == labels_of(plain[:2])  # type: ignore[list-item]


def test_coalescing_serves_several_event_loops_in_several_threads(varied_checkpoint, plain):
    classifier = DomainClassifier.from_pretrained(varied_checkpoint, coalesce_ms=5)
    outcomes: list[list[str]] = []

    async def ask_all() -> list[str]:
        return labels_of(await asyncio.gather(*(classifier.ainvoke(q) for q in QUESTIONS)))

    threads = [
        threading.Thread(target=lambda: outcomes.append(asyncio.run(ask_all()))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes == [labels_of(plain)] * 4


async def test_a_cancelled_caller_does_not_disturb_the_others(varied_checkpoint, plain):
    classifier = DomainClassifier.from_pretrained(varied_checkpoint, coalesce_ms=30).load()
    doomed = asyncio.ensure_future(classifier.ainvoke(QUESTIONS[0]))
    kept = asyncio.ensure_future(classifier.ainvoke(QUESTIONS[1]))
    await asyncio.sleep(0)
    doomed.cancel()
    assert (await kept).label == plain[1].label
    assert doomed.cancelled()


def test_the_cache_returns_the_plain_labels_without_a_second_pass(
    varied_checkpoint, plain, monkeypatch
):
    classifier = DomainClassifier.from_pretrained(varied_checkpoint, cache_size=100).load()
    sizes = count_forwards(classifier, monkeypatch)
    first = classifier.batch(QUESTIONS)
    spaced = [f"  {q.replace(' ', '   ')} " for q in QUESTIONS]
    again = classifier.batch(spaced) + [classifier.invoke(q) for q in QUESTIONS]
    assert_same(first, plain)
    assert labels_of(again) == labels_of(plain) * 2
    assert sum(sizes) == len(QUESTIONS)


def test_the_cache_evicts_the_least_recently_used(varied_checkpoint):
    classifier = DomainClassifier.from_pretrained(varied_checkpoint, cache_size=2)
    classifier.invoke("미분")
    classifier.invoke("법인세")
    classifier.invoke("미분")
    classifier.invoke("실학")  # evicts 법인세, the least recently used
    cache = classifier._cache
    assert cache is not None and len(cache) == 2
    misses = cache.misses
    classifier.invoke("법인세")
    assert cache.misses == misses + 1


def test_the_cache_is_off_by_default(varied_checkpoint):
    classifier = DomainClassifier.from_pretrained(varied_checkpoint).load()
    assert classifier._cache is None


def test_length_sorted_chunks_keep_the_input_order(varied_checkpoint, plain, monkeypatch):
    classifier = DomainClassifier.from_pretrained(varied_checkpoint, batch_size=3).load()
    sizes = count_forwards(classifier, monkeypatch)
    assert labels_of(classifier.batch(QUESTIONS)) == labels_of(plain)
    logits = classifier.predict_logits(QUESTIONS)
    assert [classifier.labels[i] for i in logits.argmax(axis=1)] == labels_of(plain)
    assert sorted(sizes) == sorted([3, 3, 3, 2] * 2)  # chunks may finish in any order


def test_int8_quantisation_gives_the_plain_labels(make_checkpoint):
    # The random 16-wide model above is too noisy for int8 (its logits move by ~1.5):
    # here the bias sets the label, and benchmarks/ measure agreement on KMMLU itself.
    path = make_checkpoint(bias={"Math": 3.0, "Law": 2.0, "Taxation": 1.0})
    plain = DomainClassifier.from_pretrained(path).batch(QUESTIONS)
    classifier = DomainClassifier.from_pretrained(path, quantize="int8")
    assert_same(classifier.batch(QUESTIONS), plain)
    assert "quantized" in type(classifier.model.classifier.dense).__module__


def test_int8_quantisation_is_cpu_only(varied_checkpoint):
    with pytest.raises(ValueError, match="CPU only"):
        DomainClassifier.from_pretrained(varied_checkpoint, quantize="int8", device="meta").load()


def test_num_threads_is_applied_on_load_only(varied_checkpoint, plain):
    before = torch.get_num_threads()
    classifier = DomainClassifier.from_pretrained(varied_checkpoint, num_threads=1)
    assert torch.get_num_threads() == before
    try:
        assert labels_of(classifier.batch(QUESTIONS)) == labels_of(plain)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_float16_weights_run_in_float32_on_cpu(tmp_path, varied_checkpoint, plain):
    from transformers import ElectraForSequenceClassification

    half = tmp_path / "half"
    ElectraForSequenceClassification.from_pretrained(varied_checkpoint).half().save_pretrained(half)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (half / name).write_bytes((varied_checkpoint / name).read_bytes())
    classifier = DomainClassifier.from_pretrained(half)
    assert labels_of(classifier.batch(QUESTIONS)) == labels_of(plain)
    assert classifier.model.dtype == torch.float32


@pytest.fixture(scope="module")
def exported_checkpoint(tmp_path_factory, varied_checkpoint) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import shutil

    from langchain_domain_router.classifier import export_onnx

    path = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(varied_checkpoint, path)
    labels = [p.label for p in DomainClassifier.from_pretrained(varied_checkpoint).batch(QUESTIONS)]
    export_onnx(path, int8=True, check_texts=QUESTIONS, check_labels=labels)
    return path


def test_the_export_records_its_inputs_and_the_int8_check(exported_checkpoint):
    meta = json.loads((exported_checkpoint / "onnx" / "export.json").read_text())
    assert meta["inputs"][0] == "input_ids" and "attention_mask" in meta["inputs"]
    check = meta["int8_check"]
    assert check["questions"] == len(QUESTIONS)
    assert check["float32_accuracy"] == 100.0  # the labels are the float model's own
    within = check["int8_minus_float32_points"] >= -0.5
    assert meta["default"] == ("int8" if within else "float32")


def test_auto_runs_the_export_when_there_is_one_and_torch_otherwise(
    exported_checkpoint, varied_checkpoint, plain
):
    exported = DomainClassifier.from_pretrained(exported_checkpoint, quantize="float32")
    assert exported.backend == "auto" and exported.resolved_backend == "onnx"
    assert_same(exported.batch(QUESTIONS), plain)
    assert isinstance(exported.model, OnnxModel)
    assert DomainClassifier.from_pretrained(varied_checkpoint).resolved_backend == "torch"
    forced = DomainClassifier.from_pretrained(exported_checkpoint, backend="torch")
    assert forced.resolved_backend == "torch"
    assert_same(forced.batch(QUESTIONS), plain)
    on_gpu = DomainClassifier.from_pretrained(exported_checkpoint, device="cuda:0")
    assert on_gpu.resolved_backend == "torch"


def test_one_model_per_directory_and_settings_is_loaded_per_process(exported_checkpoint):
    first = DomainClassifier.from_pretrained(exported_checkpoint, top_k=2)
    second = DomainClassifier.from_pretrained(exported_checkpoint, top_k=5, cache_size=10)
    assert first.model is second.model
    assert first.invoke("미분").top_k[0] == second.invoke("미분").top_k[0]
    other = DomainClassifier.from_pretrained(exported_checkpoint, max_length=16)
    assert other.model is not first.model


def test_a_directory_saved_again_is_loaded_again(tmp_path, varied_checkpoint):
    import shutil

    path = tmp_path / "model"
    shutil.copytree(varied_checkpoint, path)
    before = DomainClassifier.from_pretrained(path).model
    config = path / "config.json"
    config.write_text(config.read_text())  # a new modification time
    os.utime(config, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert DomainClassifier.from_pretrained(path).model is not before


def test_the_onnx_backend_gives_the_plain_labels_and_scores(exported_checkpoint, plain):
    classifier = DomainClassifier.from_pretrained(
        exported_checkpoint, backend="onnx", quantize="float32"
    )
    assert_same(classifier.batch(QUESTIONS), plain)
    assert_same([classifier.invoke(q) for q in QUESTIONS], plain)
    assert classifier.labels == DomainClassifier.from_pretrained(exported_checkpoint).labels


async def test_the_onnx_backend_coalesces_and_caches(exported_checkpoint, plain):
    classifier = DomainClassifier.from_pretrained(
        exported_checkpoint,
        backend="onnx",
        quantize="float32",
        coalesce_ms=5,
        cache_size=100,
        num_threads=1,
    )
    results = await asyncio.gather(*(classifier.ainvoke(q) for q in QUESTIONS * 2))
    assert labels_of(results) == labels_of(plain) * 2


def test_the_onnx_int8_graph_loads_and_predicts(exported_checkpoint):
    classifier = DomainClassifier.from_pretrained(
        exported_checkpoint, backend="onnx", quantize="int8"
    )
    assert len(classifier.batch(QUESTIONS)) == len(QUESTIONS)


def test_the_onnx_backend_says_how_to_export(varied_checkpoint):
    with pytest.raises(ValueError, match="domain-router export-onnx"):
        DomainClassifier.from_pretrained(varied_checkpoint, backend="onnx").load()


def test_threads_follow_the_cores_this_process_may_use(tmp_path):
    from langchain_domain_router.classifier._runtime import available_cpus, default_threads

    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path / "absent") == affinity
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")  # docker run --cpus 1.5
    assert available_cpus(quota) == min(affinity, 2)
    quota.write_text("max 100000\n")
    assert available_cpus(quota) == affinity
    assert [default_threads(n) for n in (1, 2, 3, 4, 8, 64)] == [1, 1, 1, 2, 4, 4]


class _EventRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.events.append(name)


async def test_routing_events_and_the_classifier_run_only_when_someone_listens(
    math_checkpoint, monkeypatch
):
    from langchain_domain_router import build_router_graph
    from langchain_domain_router.graph import _nodes

    dispatched: list[str] = []
    original = _nodes.dispatch_custom_event

    def counting(name: str, data: Any, **kwargs: Any) -> None:
        dispatched.append(name)
        original(name, data, **kwargs)

    monkeypatch.setattr(_nodes, "dispatch_custom_event", counting)
    classifier = DomainClassifier.from_pretrained(math_checkpoint)
    graph = build_router_graph(make_config(math=fake_expert("math answer")), classifier=classifier)
    traced: list[str] = []
    monkeypatch.setattr(
        DomainClassifier,
        "invoke",
        lambda self, *a, **k: traced.append("run") or self.classify(a[0]),
    )
    assert graph.invoke({"question": "미분"})["answer"] == "math answer"
    assert dispatched == [] and traced == []  # nobody listens: no events, no child run
    recorder = _EventRecorder()
    graph.invoke({"question": "미분"}, {"callbacks": [recorder]})
    assert recorder.events == ["routing_decision", "routing_complete"]
    assert traced == ["run"]
    stream = graph.astream_events({"question": "미분"}, version="v2")
    names = [e["name"] async for e in stream if e["event"] == "on_custom_event"]
    assert names == ["routing_decision", "routing_complete"]


def test_an_expert_is_tried_max_retries_plus_one_times_in_one_loop():
    from langchain_core.messages import HumanMessage

    from langchain_domain_router.graph.experts import call_expert
    from tests.conftest import FailingChatModel

    model = FailingChatModel(messages=iter([]))
    profile = ExpertProfile(name="flaky", model=model, max_retries=2, timeout_s=5)
    with pytest.raises(Exception, match="endpoint returned 500"):
        call_expert(model, profile, [HumanMessage(content="q")], {})
    assert model.calls == 3


def test_the_offline_stand_in_answers_in_the_calling_thread(monkeypatch):
    from langchain_core.messages import HumanMessage

    from langchain_domain_router.graph import experts
    from langchain_domain_router.graph.experts import OfflineExpert, call_expert

    def no_pool() -> None:
        msg = "the offline stand-in went through the expert thread pool"
        raise AssertionError(msg)

    monkeypatch.setattr(experts, "_expert_threads", no_pool)
    model = OfflineExpert(expert="law", target_model="openai:gpt-4o", reason="confident")
    profile = ExpertProfile(name="law", model=model, timeout_s=5)
    reply = call_expert(model, profile, [HumanMessage(content="근저당권이란?")], {})
    assert str(reply.content).startswith("[offline expert]")
    assert "'law'" in str(reply.content)


@pytest.mark.parametrize(
    ("call", "bookkeeper", "runs"),
    [
        (lambda c: c.invoke("미분"), "_call_with_config", 1),
        (lambda c: c.batch(["미분", "적분"]), "_batch_with_config", 2),
    ],
    ids=["invoke", "batch"],
)
def test_the_classifier_records_runs_only_for_a_listener(
    math_checkpoint, monkeypatch, call, bookkeeper, runs
):
    from langchain_core.tracers.context import collect_runs

    classifier = DomainClassifier.from_pretrained(math_checkpoint)
    bookkeeping: list[str] = []
    original = getattr(DomainClassifier, bookkeeper)

    def counting(self: DomainClassifier, *args: Any, **kwargs: Any) -> Any:
        bookkeeping.append(bookkeeper)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DomainClassifier, bookkeeper, counting)
    plain = call(classifier)
    assert bookkeeping == []  # no callbacks, no tracing: no run bookkeeping
    with collect_runs() as collector:
        traced = call(classifier)
    assert bookkeeping == [bookkeeper]
    assert [run.name for run in collector.traced_runs] == ["DomainClassifier"] * runs
    assert all(run.outputs is not None for run in collector.traced_runs)
    assert traced == plain


def test_a_bad_batch_input_is_handled_alike_with_and_without_a_listener(math_checkpoint):
    classifier = DomainClassifier.from_pretrained(math_checkpoint)
    good = classifier.batch(["미분"])[0]
    for config in (None, {"callbacks": [_EventRecorder()]}):
        with pytest.raises(ValueError, match="question"):
            classifier.batch(["미분", " "], config)
        mixed = classifier.batch(["미분", " "], config, return_exceptions=True)
        assert mixed[0] == good
        assert isinstance(mixed[1], ValueError)


class _Overlap:
    """A 50 ms batch of work that records how many of its calls ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def run(self, texts: list[str]) -> list[int]:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.05)  # long enough for a second worker to start beside it
        with self.lock:
            self.running -= 1
        return [len(text) for text in texts]


def test_a_large_call_runs_its_chunks_side_by_side_in_order():
    from langchain_domain_router.classifier._chunks import by_length_chunks
    from langchain_domain_router.classifier._runtime import forward_passes

    assert [forward_passes(t, cpus=2) for t in (1, 2, 4)] == [2, 1, 1]
    assert forward_passes(2, cpus=8) == 4
    texts = ["x" * n for n in (5, 1, 3, 8, 2, 7, 4, 6)]
    sequential, side_by_side = _Overlap(), _Overlap()
    assert by_length_chunks(texts, 2, sequential.run) == [len(t) for t in texts]
    assert by_length_chunks(texts, 2, side_by_side.run, workers=2) == [len(t) for t in texts]
    assert (sequential.peak, side_by_side.peak) == (1, 2)


async def test_the_coalescer_runs_a_second_batch_beside_a_busy_one():
    from langchain_domain_router.classifier._coalesce import Coalescer

    texts = ["x" * n for n in range(1, 25)]
    overlap = _Overlap()
    coalescer = Coalescer(overlap.run, max_batch=4, window_s=0.0, workers=2)
    for text in ["a", "bb", "ccc"]:  # one at a time: never two batches at once
        assert await coalescer.submit(text) == len(text)
    assert overlap.peak == 1
    assert await asyncio.gather(*(coalescer.submit(t) for t in texts)) == list(range(1, 25))
    assert overlap.peak == 2  # busy worker, requests waiting: a second one ran beside it
    alone = _Overlap()
    single = Coalescer(alone.run, max_batch=4, window_s=0.0)
    assert await asyncio.gather(*(single.submit(t) for t in texts)) == list(range(1, 25))
    assert alone.peak == 1

"""Speed of the domain classifier and the routing graph on this machine, in one run.

Prints Markdown tables: single-question latency, throughput by batch size, graph
overhead, request coalescing under 64 concurrent callers, memory, import + first answer,
and the issue's targets with the measured value next to each.

    python benchmarks/bench_speed.py --model DIR [--quick]
    python benchmarks/bench_speed.py --model DIR --baseline OTHER --budget-only
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (  # noqa: E402 - the path above makes the package importable
    QUESTIONS,
    ROOT,
    check_model,
    load_kmmlu,
    machine_state,
    model_summary,
    p50_p99,
    parser,
    sample,
    table,
    timings_ms,
)

BATCH_SIZES = (1, 8, 32, 128)


class _MinimalState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    question: str


CALLERS = 64

_SUBPROCESS = """
import os, time
start = time.perf_counter()
from langchain_domain_router import DomainClassifier
classifier = DomainClassifier.from_pretrained({model!r}, **{options!r})
label = classifier.invoke("민법상 채권자대위권의 요건은 무엇인가요?").label
first = time.perf_counter() - start
rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS"))
print({{"first_s": first, "rss_mb": rss / 1024, "label": label}})
"""


VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "onnx, float32": {"backend": "onnx", "quantize": "float32"},
    "onnx, 2 threads": {"backend": "onnx", "num_threads": 2},
    "torch": {"backend": "torch"},
    "torch, int8": {"backend": "torch", "quantize": "int8"},
}
"""The operating points every table compares (``classifier_for`` builds them). ``default``
is what ``DomainClassifier.default()`` runs: backend auto (ONNX Runtime on the export's
default graph), threads chosen from the machine."""
DEFAULT = "default"
FAST = DEFAULT
TORCH = "torch"


def source_for(model: str, onnx_model: str, options: dict[str, Any]) -> str:
    """The directory a variant loads: ``model`` itself whenever it can run the variant.

    The shipped default keeps only its int8 graph, so the float32 variant reads the copy
    ``exported`` made; every other variant (``default`` above all) loads the model as a
    user does. The copy's own default graph is float32 (its int8 graph is unchecked), so
    loading it for ``default`` would time float32 under the default's name.
    """
    from langchain_domain_router.classifier import onnx_file, read_export

    float_graph = options.get("quantize") == "float32" and options.get("backend") != "torch"
    if read_export(model) and (not float_graph or onnx_file(model, "float32").is_file()):
        return model
    return onnx_model


def classifier_for(model: str, onnx_model: str, **options: Any) -> Any:
    """A loaded classifier of the variant ``options`` (see ``source_for``)."""
    from langchain_domain_router import DomainClassifier

    return DomainClassifier.from_pretrained(
        source_for(model, onnx_model, options), **options
    ).load()


def exported(model: str) -> str:
    """``model`` itself when it has an ONNX export, else an exported temporary copy."""
    from langchain_domain_router.classifier import export_onnx, onnx_file, read_export

    if read_export(model) and onnx_file(model, "float32").is_file():
        return model
    copy = Path(tempfile.mkdtemp(prefix="bench-onnx-")) / "model"
    shutil.copytree(model, copy)
    with contextlib.redirect_stdout(io.StringIO()):
        export_onnx(copy, int8=True)
    return str(copy)


def single_latency(model: str, onnx_model: str, repeats: int) -> dict[str, tuple[float, float]]:
    results = {}
    for name, options in {
        **VARIANTS,
        "default, cache hit": {**VARIANTS[FAST], "cache_size": 10_000},
    }.items():
        classifier = classifier_for(model, onnx_model, **options)
        questions = itertools.cycle(QUESTIONS)
        ask = classifier.invoke
        results[name] = p50_p99(timings_ms(lambda a=ask, q=questions: a(next(q)), repeats))
        if name == DEFAULT:
            direct = classifier.classify_texts
            results["default, classify_texts: no callbacks"] = p50_p99(
                timings_ms(lambda d=direct, q=questions: d([next(q)]), repeats)
            )
    rows = [(name, p50, p99) for name, (p50, p99) in results.items()]
    table("Single-question latency, invoke (ms)", ["variant", "p50", "p99"], rows)
    return results


def batch_rate(classifier: Any, texts: Sequence[str], size: int, seconds: float) -> float:
    """Questions per second of ``classifier.batch`` over ``seconds``, after one untimed call.

    Each call gets the next ``size`` of the first 1,024 ``texts``, cycling.
    """
    chunks = itertools.cycle([list(texts[i : i + size]) for i in range(0, 1024, size)])
    classifier.batch(next(chunks))
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += len(classifier.batch(next(chunks)))
    return done / (time.perf_counter() - start)


def throughput(
    model: str, onnx_model: str, texts: Sequence[str], seconds: float
) -> dict[str, dict[int, float]]:
    results: dict[str, dict[int, float]] = {}
    for name, options in VARIANTS.items():
        results[name] = {}
        for size in BATCH_SIZES:
            classifier = classifier_for(model, onnx_model, batch_size=size, **options)
            results[name][size] = batch_rate(classifier, texts, size, seconds)
    base = results[TORCH]
    rows = [
        (size, *(results[name][size] for name in VARIANTS), results[FAST][size] / base[size])
        for size in BATCH_SIZES
    ]
    table(
        "Throughput by batch size (questions/s; batch_size = batch: one forward pass each)",
        ["batch", *VARIANTS, f"{FAST} / {TORCH}"],
        rows,
    )
    return results


def bucketing(model: str, onnx_model: str, texts: Sequence[str]) -> dict[str, float]:
    """A ``batch`` call over the whole workload: length-sorted chunks against input order.

    Each rate is the median of three timed calls after one untimed call.
    """
    results: dict[str, float] = {}
    rows = []
    workloads = {"KMMLU test sample": list(texts), "short everyday questions": QUESTIONS * 256}
    for name in (DEFAULT, "onnx, float32", TORCH):
        classifier = classifier_for(model, onnx_model, batch_size=64, **VARIANTS[name])
        for workload, items in workloads.items():
            # One untimed pass first: a server sees each batch shape more than once.
            classifier.batch(items)

            def in_order(c: Any = classifier, texts: list[str] = items) -> None:
                for i in range(0, len(texts), 64):
                    c.classify_texts(texts[i : i + 64])

            one_call = (in_order, lambda c=classifier, texts=items: c.batch(texts))
            unsorted, rate = (
                1000 * len(items) / statistics.median(timings_ms(fn, 3, warmup=0))
                for fn in one_call
            )
            results[f"{name}, {workload}"] = rate
            rows.append((name, workload, len(items), unsorted, rate, rate / unsorted))
    table(
        "Throughput of one large batch() call (batch_size=64; median of 3 calls after a warm "
        "one): chunks in input order vs length-sorted chunks (questions/s)",
        ["variant", "workload", "questions", "input order", "length-sorted", "gain"],
        rows,
    )
    return results


def graph_overhead(model: str, onnx_model: str, repeats: int) -> dict[str, float]:
    """Per question: the graph against the classifier and the expert called directly.

    Two instant experts: a fake chat model (what any LangChain model goes through, with
    the timeout thread of a sync call) and the offline stand-in the graph uses when no
    model can be reached (what ``make demo`` runs).
    """
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from langchain_domain_router.graph.experts import OfflineExpert

    # The fast classifier: the pairing cancels its time, and a shorter one is less noise.
    classifier = classifier_for(model, onnx_model, **VARIANTS[FAST])
    experts = {
        "": GenericFakeChatModel(messages=itertools.cycle([AIMessage(content="ok")])),
        ", offline stand-in": OfflineExpert(expert="bench", target_model="-", reason="bench"),
    }
    results: dict[str, float] = {}
    rows: list[tuple[Any, ...]] = []
    for suffix, expert in experts.items():
        for mode, samples in _paired_runs(classifier, expert, repeats).items():
            overhead = [g - c - e for g, c, e in samples]
            results[mode + suffix] = statistics.median(overhead)
            rows.append(
                (
                    mode + suffix,
                    statistics.median(g for g, _, _ in samples),
                    statistics.median(c for _, c, _ in samples),
                    statistics.median(e for _, _, e in samples),
                    statistics.median(g - e for g, _, e in samples),
                    statistics.median(overhead),
                    p50_p99(overhead)[1],
                )
            )
    floor = statistics.median(_minimal_graph_ms(repeats))
    rows.append(("LangGraph floor: a bare 2-node graph, no work", floor, "-", "-", "-", floor, "-"))
    table(
        f"Graph overhead (ms; paired per question, medians; instant expert; {FAST})",
        [
            "path",
            "graph total",
            "classifier alone",
            "expert alone",
            "graph - expert (routing cost)",
            "graph - classifier - expert (p50)",
            "same, p99",
        ],
        rows,
    )
    return results


def _paired_runs(
    classifier: Any, expert: Any, repeats: int
) -> dict[str, list[tuple[float, float, float]]]:
    """``(graph, classifier, expert)`` ms per question, for ``invoke`` and ``ainvoke``."""
    from langchain_core.messages import HumanMessage

    from langchain_domain_router import ExpertProfile, RouterConfig, build_router_graph

    config = RouterConfig(
        experts=[
            ExpertProfile(name=name, model=expert, supercategories=[sup])
            for name, sup in [("stem", "STEM"), ("applied", "Applied Science"), ("humss", "HUMSS")]
        ],
        fallback=ExpertProfile(name="general", model=expert),
    )
    graph = build_router_graph(config, classifier=classifier)
    questions = itertools.cycle(QUESTIONS)

    def paired() -> tuple[float, float, float]:
        question = next(questions)
        t0 = time.perf_counter()
        graph.invoke({"question": question})
        t1 = time.perf_counter()
        classifier.invoke(question)
        t2 = time.perf_counter()
        expert.invoke([HumanMessage(content=question)])
        t3 = time.perf_counter()
        return (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000

    async def apaired() -> tuple[float, float, float]:
        question = next(questions)
        t0 = time.perf_counter()
        await graph.ainvoke({"question": question})
        t1 = time.perf_counter()
        await classifier.ainvoke(question)
        t2 = time.perf_counter()
        await expert.ainvoke([HumanMessage(content=question)])
        t3 = time.perf_counter()
        return (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000

    async def arun(count: int) -> list[tuple[float, float, float]]:
        return [await apaired() for _ in range(count)]

    out = {}
    for mode, runs in (
        ("invoke", lambda count: [paired() for _ in range(count)]),
        ("ainvoke", lambda count: asyncio.run(arun(count))),
    ):
        runs(20)
        out[mode] = runs(repeats)
    return out


def _minimal_graph_ms(repeats: int) -> list[float]:
    """Per-invoke time of the smallest graph of the same shape: what LangGraph itself costs."""
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.graph import END, START, StateGraph

    def ask(state: _MinimalState) -> dict[str, Any]:
        return {"messages": [HumanMessage(content=state["question"])]}

    def answer(state: _MinimalState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="ok")]}

    builder = StateGraph(_MinimalState)
    builder.add_node("ask", ask)
    builder.add_node("answer", answer)
    builder.add_edge(START, "ask")
    builder.add_conditional_edges("ask", lambda state: "answer", path_map=["answer"])
    builder.add_edge("answer", END)
    graph = builder.compile()
    return timings_ms(lambda: graph.invoke({"question": "q"}), repeats)


def coalescing(
    model: str, onnx_model: str, texts: Sequence[str], per_caller: int
) -> dict[str, float]:
    variants: dict[str, dict[str, Any]] = {
        "torch: no coalescing (executor threads)": VARIANTS[TORCH],
        "torch: coalesce_ms=0": {**VARIANTS[TORCH], "coalesce_ms": 0.0},
        f"{FAST}: no coalescing": VARIANTS[FAST],
        f"{FAST}: coalesce_ms=0 (the server's default)": {**VARIANTS[FAST], "coalesce_ms": 0.0},
        f"{FAST}: coalesce_ms=2": {**VARIANTS[FAST], "coalesce_ms": 2.0},
    }
    results: dict[str, float] = {}
    rows = []
    for name, options in variants.items():
        classifier = classifier_for(model, onnx_model, **options)
        rate, latencies = asyncio.run(_callers(classifier, texts, per_caller))
        results[name] = rate
        p50, p99 = p50_p99(latencies)
        batches = classifier._coalescer.batches if classifier._coalescer else None
        rows.append((name, rate, p50, p99, batches if batches is not None else "-"))
    base = results["torch: no coalescing (executor threads)"]
    rows = [(*row, results[row[0]] / base) for row in rows]
    table(
        f"Request coalescing: {CALLERS} concurrent ainvoke callers x {per_caller} calls",
        [
            "variant",
            "questions/s",
            "latency p50 ms",
            "latency p99 ms",
            "forward passes",
            "vs torch, no coalescing",
        ],
        rows,
    )
    return results


async def _callers(
    classifier: Any, texts: Sequence[str], per_caller: int
) -> tuple[float, list[float]]:
    await classifier.ainvoke(texts[0])

    async def caller(index: int) -> list[float]:
        latencies = []
        for call in range(per_caller):
            text = texts[(index * per_caller + call) % len(texts)]
            start = time.perf_counter()
            await classifier.ainvoke(text)
            latencies.append((time.perf_counter() - start) * 1000)
        return latencies

    start = time.perf_counter()
    per_task = await asyncio.gather(*(caller(i) for i in range(CALLERS)))
    elapsed = time.perf_counter() - start
    return CALLERS * per_caller / elapsed, [ms for task in per_task for ms in task]


def fresh_process(
    model: str, onnx_model: str, runs: int, names: Sequence[str] = (DEFAULT, "onnx, float32", TORCH)
) -> dict[str, dict[str, float]]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    results: dict[str, dict[str, float]] = {}
    rows = []
    for name in names:
        options = VARIANTS[name]
        path = source_for(model, onnx_model, options)
        walls, firsts, rss = [], [], []
        for _ in range(runs):
            start = time.perf_counter()
            out = subprocess.run(  # noqa: S603 - runs this interpreter on our own script
                [sys.executable, "-c", _SUBPROCESS.format(model=path, options=options)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
            walls.append(time.perf_counter() - start)
            record = json.loads(out.strip().splitlines()[-1].replace("'", '"'))
            firsts.append(record["first_s"])
            rss.append(record["rss_mb"])
        results[name] = {
            "wall_s": statistics.median(walls),
            "first_s": statistics.median(firsts),
            "rss_mb": statistics.median(rss),
        }
        rows.append((name, *results[name].values()))
    table(
        f"Fresh process (median of {runs}): import + load + first answer, and memory",
        ["variant", "process wall s (incl. interpreter)", "import -> first answer s", "RSS MB"],
        rows,
    )
    return results


def targets(
    latency: dict[str, tuple[float, float]],
    rates: dict[str, dict[int, float]],
    large: dict[str, float],
    overhead: dict[str, float],
    fresh: dict[str, dict[str, float]],
    coalesced: dict[str, float],
) -> None:
    def row(name: str) -> list[str]:
        p50, p99 = latency[name]
        rate = max(*rates[name].values(), large[f"{name}, KMMLU test sample"])
        return [
            f"{p50:.2f} ms {_ok(p50 <= 2)}",
            f"{p99:.2f} ms {_ok(p99 <= 10)}",
            f"{rate:,.0f} q/s {_ok(rate >= 2000)}",
            f"{fresh[name]['rss_mb']:.0f} MB {_ok(fresh[name]['rss_mb'] <= 250)}",
            f"{fresh[name]['first_s']:.2f} s {_ok(fresh[name]['first_s'] <= 1.5)}",
        ]

    what = [
        "single question p50 <= 2 ms",
        "single question p99 <= 10 ms",
        "best batched throughput, KMMLU questions >= 2,000 q/s",
        "RSS with the model loaded <= 250 MB",
        "import + first answer <= 1.5 s",
    ]
    table(
        "Targets (issue 13)",
        ["target", DEFAULT, TORCH],
        [(w, a, b) for w, a, b in zip(what, row(DEFAULT), row(TORCH), strict=True)],
    )
    server = f"{FAST}: coalesce_ms=0 (the server's default)"
    gain = coalesced[server] / coalesced[f"{FAST}: no coalescing"]
    torch_gain = (
        coalesced["torch: coalesce_ms=0"] / coalesced["torch: no coalescing (executor threads)"]
    )
    print(
        "\n- graph overhead p50 <= 1 ms: "
        + ", ".join(f"{path} {ms:.2f} ms {_ok(ms <= 1)}" for path, ms in overhead.items())
    )
    print(
        f"- coalescing gain under {CALLERS} callers (coalesce_ms=0 vs none): "
        f"torch {torch_gain:.2f}x, {FAST} {gain:.2f}x; {FAST} vs torch without coalescing: "
        f"{coalesced[server] / coalesced['torch: no coalescing (executor threads)']:.2f}x"
    )


def _ok(met: bool) -> str:
    return "(met)" if met else "(**missed**)"


def speed_budget(models: Sequence[str], texts: Sequence[str], repeats: int, runs: int) -> None:
    """Issue 25's speed budget for each model, measured in turn and printed side by side.

    Single-question p50/p99 of ``invoke`` (the default variant), the best throughput of
    ``batch`` at 32 and 128 questions a pass (3 s each), RSS and import + first answer in
    a fresh process (median of ``runs``), and the model directory's size.
    """
    measured: dict[str, dict[str, float]] = {}
    for model in models:
        classifier = classifier_for(model, model)
        asked = itertools.cycle(QUESTIONS)
        p50, p99 = p50_p99(timings_ms(lambda c=classifier, q=asked: c.invoke(next(q)), repeats))
        best = max(
            batch_rate(classifier_for(model, model, batch_size=size), texts, size, 3.0)
            for size in (32, 128)
        )
        with contextlib.redirect_stdout(io.StringIO()):  # its own table is not wanted here
            fresh = fresh_process(model, model, runs, names=(DEFAULT,))[DEFAULT]
        files = [f for f in Path(model).rglob("*") if f.is_file()]
        measured[model] = {
            "p50": p50,
            "p99": p99,
            "rate": best,
            "rss": fresh["rss_mb"],
            "first": fresh["first_s"],
            "mb": sum(f.stat().st_size for f in files) / 1e6,
        }
    budget = [
        ("single question p50 <= 12 ms", "p50", "{:.2f} ms", lambda v: v <= 12),
        ("single question p99 <= 25 ms", "p99", "{:.2f} ms", lambda v: v <= 25),
        ("batched >= 150 questions/s (best of 32, 128)", "rate", "{:,.0f} q/s", lambda v: v >= 150),
        ("RSS <= 400 MB", "rss", "{:.0f} MB", lambda v: v <= 400),
        ("import + first answer <= 2 s", "first", "{:.2f} s", lambda v: v <= 2),
        ("model files <= 60 MB", "mb", "{:.1f} MB", lambda v: v <= 60),
    ]
    rows = [
        (what, *(f"{fmt.format(measured[m][key])} {_ok(ok(measured[m][key]))}" for m in models))
        for what, key, fmt, ok in budget
    ]
    table("Speed budget (issue 25), measured in this run", ["target", *models], rows)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        help="another model directory for the speed-budget table (repeatable)",
    )
    p.add_argument("--budget-only", action="store_true", help="print only the speed-budget table")
    args = p.parse_args()
    check_model(args.model)
    stamp = time.strftime("%Y-%m-%d %H:%M %Z")
    print(f"# bench_speed {'--quick ' if args.quick else ''}({stamp})\n")
    print(f"- model: {model_summary(args.model)}")
    machine_state()
    rows = load_kmmlu(args.data, "test")
    texts = [q for q, _ in sample(rows, 2048, seed=0)] if rows else QUESTIONS * 256
    workload = "2,048 KMMLU test questions (seed 0)" if rows else "the built-in questions"
    print(f"- batch and coalescing workload: {workload}; single latency: 8 short questions")
    models = [args.model, *args.baseline]
    speed_budget(models, texts, 100 if args.quick else 1000, 1 if args.quick else 3)
    if args.budget_only:
        return
    onnx_model = exported(args.model)
    repeats = 100 if args.quick else 1000
    latency = single_latency(args.model, onnx_model, repeats)
    rates = throughput(args.model, onnx_model, texts, 0.5 if args.quick else 3.0)
    large = bucketing(args.model, onnx_model, texts)
    overhead = graph_overhead(args.model, onnx_model, 50 if args.quick else 500)
    coalesced = coalescing(args.model, onnx_model, texts, 4 if args.quick else 16)
    fresh = fresh_process(args.model, onnx_model, 1 if args.quick else 3)
    targets(latency, rates, large, overhead, fresh, coalesced)
    load = os.getloadavg()
    print(f"- load average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")


if __name__ == "__main__":
    main()

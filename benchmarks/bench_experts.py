"""How often a question reaches the right expert, for expert groupings side by side.

A question's right expert is the one a configuration staffs for its labelled subject (the
``general`` fallback for a subject no expert covers); it reaches it when routing (the
classifier, the thresholds and the supercategory fallback, exactly as the graph decides)
sends it there. The questions are the project's own user-style test: the fixed-seed 15 %
test split of ``synthetic/`` that training never sees (``training/_splits.py``, seed 0).
It also prints the subject pairs the classifier confuses most, the evidence for where a
borderline subject belongs.

    python benchmarks/bench_experts.py [--model DIR] [--data ../shared/data]
        [--questions FILE_OR_FOLDER ...] [CONFIG ...]

``--questions`` scores more labelled ``text,label`` sets beside it, each on its own row
(evaluation sets only: they decide nothing here).

With no CONFIG it compares the example configuration with
``benchmarks/configs/supercategory_experts.yaml``, the example's earlier grouping (one
expert per KMMLU supercategory).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import ROOT, check_model, parser, table  # noqa: E402 - path above

BEFORE = ROOT / "benchmarks" / "configs" / "supercategory_experts.yaml"


def main() -> None:
    """Route the user-style test split through each configuration and print the rates."""
    from langchain_domain_router import DomainClassifier, RouterConfig
    from langchain_domain_router.config import example_config_path
    from langchain_domain_router.graph.policy import decide, resolve_thresholds
    from langchain_domain_router.schema import GENERAL_NODE
    from langchain_domain_router.training import DataSources
    from langchain_domain_router.training._data import load_labelled_file, load_labelled_folder
    from langchain_domain_router.training._splits import load_bundle

    p = parser(__doc__.splitlines()[0])
    p.add_argument("configs", nargs="*", help="router configs (default: example and before)")
    p.add_argument("--pairs", type=int, default=15, help="confused subject pairs to list")
    p.add_argument(
        "--questions", action="append", default=[], help="more labelled sets (repeatable)"
    )
    args = p.parse_args()
    check_model(args.model)
    synthetic = Path(args.data) / "synthetic"
    if not synthetic.is_dir():
        sys.exit(f"no synthetic questions at {synthetic}: pass --data ../shared/data")
    bundle = load_bundle(DataSources(synthetic=str(synthetic)), with_train=False)
    sets = {"synthetic test": bundle.synthetic_test}
    for extra in map(Path, args.questions):
        sets[extra.name] = (
            load_labelled_folder(extra) if extra.is_dir() else load_labelled_file(extra)
        )
    classifier = DomainClassifier.from_pretrained(args.model)
    predicted = {name: classifier.batch([row.text for row in rows]) for name, rows in sets.items()}
    paths = [Path(c) for c in args.configs] or [example_config_path(), BEFORE]
    results = []
    for path in paths:
        config = RouterConfig.from_file(path)
        thresholds = resolve_thresholds(config, classifier.calibration)
        for name, rows in sets.items():
            right = to_general = 0
            for row, prediction in zip(rows, predicted[name], strict=True):
                expert = config.expert_for_domain(row.label)
                wanted = expert.name if expert else GENERAL_NODE
                chosen = decide(prediction, config, thresholds, classifier_latency_ms=0.0).expert
                right += chosen == wanted
                to_general += chosen == GENERAL_NODE
            n = len(rows)
            results.append((path.name, len(config.experts), name, n, right / n, to_general / n))
    table(
        f"Right expert ({classifier.model_version})",
        ["config", "experts", "questions", "n", "right expert", "sent to general"],
        results,
    )
    rows, predictions = sets["synthetic test"], predicted["synthetic test"]
    confused = Counter(
        (row.label, prediction.label)
        for row, prediction in zip(rows, predictions, strict=True)
        if row.label != prediction.label
    )
    table(
        "Subjects the classifier confuses most on the synthetic test (top-1, any confidence)",
        ["labelled", "predicted", "questions"],
        [(a, b, n) for (a, b), n in confused.most_common(args.pairs)],
    )


if __name__ == "__main__":
    main()

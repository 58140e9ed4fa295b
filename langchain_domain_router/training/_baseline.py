"""``baseline``: the TF-IDF + LinearSVC teacher, alone, on the same splits as the model."""

from __future__ import annotations

import json
import time
from typing import Any

from langchain_domain_router.training._splits import DataSources, load_bundle


def baseline(sources: DataSources, *, seed: int = 0) -> dict[str, Any]:
    """Fit the teacher on the training split and score KMMLU test and the synthetic test.

    Args:
        sources: Where the data lives.
        seed: The split seed.

    Returns:
        Metrics per test set (and per style on the synthetic test), with the wall time.
    """
    import numpy as np

    from langchain_domain_router.taxonomy import KMMLU_DOMAINS
    from langchain_domain_router.training._metrics import classification_metrics
    from langchain_domain_router.training._teacher import build_teacher

    started = time.time()
    bundle = load_bundle(sources, seed=seed)
    label2id = {label: i for i, label in enumerate(KMMLU_DOMAINS)}
    teacher = build_teacher().fit(
        [r.text for r in bundle.train], [label2id[r.label] for r in bundle.train]
    )
    out: dict[str, Any] = {}
    for name, rows in (
        ("kmmlu_test", bundle.kmmlu_test),
        ("synthetic_test", bundle.synthetic_test),
    ):
        if not rows:
            continue
        scores = np.full((len(rows), len(label2id)), -10.0)
        scores[:, teacher.classes_] = teacher.decision_function([r.text for r in rows])
        y = np.array([label2id[r.label] for r in rows])
        out[name] = classification_metrics(scores, y, len(label2id))
        styles = np.array([r.style for r in rows])
        out[name]["per_style_accuracy"] = {
            s: float((scores.argmax(1)[styles == s] == y[styles == s]).mean())
            for s in sorted(set(styles))
        }
    out["wall_seconds"] = round(time.time() - started)
    print(json.dumps(out, indent=1))  # noqa: T201 - the command's output
    return out

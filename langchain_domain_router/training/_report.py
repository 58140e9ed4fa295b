"""The evaluation report as Markdown, and the per-subject table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def per_subject(labels: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Return precision, recall, F1 and support per subject."""
    import numpy as np
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(
        labels, pred, labels=np.arange(len(names)), zero_division=0
    )
    return {
        name: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, name in enumerate(names)
    }


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_markdown(report: dict[str, Any], path: Path, paper: dict[str, float]) -> str:
    """Write the report as Markdown to ``path`` and return the text."""
    lines = [
        f"# Evaluation of `{report['model_dir']}`",
        "",
        f"Settings: `{report['settings']}`",
        "",
        "## Targets",
        "",
        "| target | value | threshold | met |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {t['target']} | {_fmt(t['value'])} | {'<=' if t['at_most'] else '>='} "
        f"{t['threshold']} | {'yes' if t['met'] else 'NO'} |"
        for t in report["targets"]
    ]
    lines += [
        "",
        f"Paper (KoELECTRA, 5 epochs): accuracy {paper['accuracy']}, F1 {paper['macro_f1']}.",
        "",
        "## Sets",
        "",
        "| set | n | accuracy | macro-F1 | top-3 | kept / fallback | ECE |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in report["sets"].items():
        kept = m.get("kept_rate", m.get("fallback_rate"))
        lines.append(
            f"| {name} | {m['n']} | {_fmt(m.get('accuracy', '-'))} | "
            f"{_fmt(m.get('macro_f1', '-'))} | {_fmt(m.get('top3_accuracy', '-'))} | "
            f"{_fmt(kept)} | {_fmt(m.get('ece', '-'))} |"
        )
        for style, acc in m.get("per_style_accuracy", {}).items():
            lines.append(f"| {name} / {style} | | {acc:.4f} | | | | |")
    if "ood" in report:
        lines += [
            "",
            "## Out of domain",
            "",
            *(f"- {k}: {v:.4f}" for k, v in report["ood"].items()),
        ]
    if "latency" in report:
        lines += [
            "",
            "## Speed and size",
            "",
            f"- size on disk: {report['size_mb']:.1f} MB",
            *(f"- {k}: {v:.2f}" for k, v in report["latency"].items()),
        ]
    if "per_subject" in report:
        lines += [
            "",
            "## KMMLU test per subject",
            "",
            "| subject | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {n} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
            for n, m in report["per_subject"].items()
        ]
    lines += [
        "",
        "Figures: confusion_matrix.png, reliability.png, confidence_hist.png, "
        "ood_predicted_subjects.png",
        "",
    ]
    text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
    return text

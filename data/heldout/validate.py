"""Check the held-out question sets before they are used for model selection.

Checks: every line parses as JSON with exactly the keys text, label, style, subtopic; the label
is one of the 45 labels of the shipped model's ``config.json``; the style matches the file; no
text occurs twice across the four files; no text occurs, spaces removed, in the training data
(``data/team/*.jsonl`` and, where present, ``../shared/data/synthetic/*.jsonl``), nor shares
more than half of its 10-character pieces with one training text. Prints the counts; exits 1 on
any failure.

Usage (from the project root)::

    python data/heldout/validate.py
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CONFIG = ROOT / "langchain_domain_router" / "models" / "default" / "config.json"
SETS = {
    "consultation.jsonl": "consultation",
    "word_problems.jsonl": "word_problem",
    "long_context.jsonl": "long_context",
    "names_places.jsonl": "names_places",
}
KEYS = {"text", "label", "style", "subtopic"}
PIECE = 10


def _flat(text: str) -> str:
    return "".join(text.split()).lower()


def _pieces(text: str) -> set[str]:
    flat = _flat(text)
    return {flat[i : i + PIECE] for i in range(max(1, len(flat) - PIECE + 1))}


def _training_texts() -> list[str]:
    paths = sorted((ROOT / "data" / "team").glob("*.jsonl"))
    paths += sorted((ROOT.parent / "shared" / "data" / "synthetic").glob("*.jsonl"))
    return [
        json.loads(line)["text"]
        for path in paths
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def main() -> int:
    """Validate the four files and print their counts; return the exit status."""
    labels = set(json.loads(CONFIG.read_text(encoding="utf-8"))["id2label"].values())
    training = _training_texts()
    exact = {_flat(text) for text in training}
    index: defaultdict[str, set[int]] = defaultdict(set)
    for number, text in enumerate(training):
        for piece in _pieces(text):
            index[piece].add(number)
    errors: list[str] = []
    lines: list[str] = []
    seen: dict[str, str] = {}
    for name, style in SETS.items():
        counts: Counter[str] = Counter()
        for number, line in enumerate((HERE / name).read_text(encoding="utf-8").splitlines(), 1):
            row, where = json.loads(line), f"{name}:{number}"
            if set(row) != KEYS or row["label"] not in labels or row["style"] != style:
                errors.append(f"{where}: bad keys, label or style")
            if not row["text"].strip() or not row["subtopic"].strip():
                errors.append(f"{where}: empty field")
            flat, pieces = _flat(row["text"]), _pieces(row["text"])
            overlap = Counter(n for piece in pieces for n in index.get(piece, ()))
            if flat in seen:
                errors.append(f"{where}: same text as {seen[flat]}")
            if flat in exact:
                errors.append(f"{where}: text occurs in the training data")
            elif overlap and max(overlap.values()) > len(pieces) / 2:
                errors.append(f"{where}: near copy of a training text")
            seen[flat] = where
            counts[row["label"]] += 1
        lines.append(
            f"{name}: {counts.total()} rows, {len(counts)} subjects, "
            f"{min(counts.values())}-{max(counts.values())} per subject"
        )
    lines.append(f"compared with {len(training)} training texts; {len(errors)} problems")
    sys.stdout.write("\n".join(lines + errors) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

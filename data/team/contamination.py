"""Drop written lines that coincide with held-out evaluation questions.

A line is dropped when its text, spaces removed, equals a reference question's, or when more
than half of its 12-character shingles (spaces removed) occur in one reference question. The
references are every KMMLU ``*-test.csv`` question and every synthetic question (its test split
is held out). Only removals: nothing is edited towards any reference.

Usage (from the project root, with ``../shared/data`` present)::

    python data/team/contamination.py ../shared/data NEW.jsonl [...] --out data/team/FILE.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

SHINGLE = 12


def _shingles(text: str) -> set[str]:
    flat = "".join(text.split())
    return {flat[i : i + SHINGLE] for i in range(max(1, len(flat) - SHINGLE + 1))}


def _references(shared: Path) -> list[str]:
    texts = []
    for path in sorted((shared / "kmmlu").glob("*-test.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            texts += [row["question"] for row in csv.DictReader(handle)]
    for path in sorted((shared / "synthetic").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.open(encoding="utf-8") if line.strip()]
    return texts


def main() -> None:
    """Filter the given JSONL files into one output file and print what was dropped."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shared", type=Path, help="the shared data folder (../shared/data)")
    parser.add_argument("inputs", type=Path, nargs="+", help="written JSONL files")
    parser.add_argument("--out", type=Path, required=True, help="the filtered JSONL file")
    args = parser.parse_args()
    references = _references(args.shared)
    exact = {"".join(text.split()) for text in references}
    index: defaultdict[str, set[int]] = defaultdict(set)
    for number, text in enumerate(references):
        for shingle in _shingles(text):
            index[shingle].add(number)
    kept, dropped, seen = [], Counter(), set()
    for path in args.inputs:
        for line in path.open(encoding="utf-8"):
            row = json.loads(line)
            flat = "".join(row["text"].split())
            shingles = _shingles(row["text"])
            overlap = Counter(n for shingle in shingles for n in index.get(shingle, ()))
            if flat in seen:
                dropped["duplicate"] += 1
            elif flat in exact:
                dropped["exact"] += 1
            elif overlap and max(overlap.values()) > len(shingles) / 2:
                dropped["near"] += 1
            else:
                kept.append(row)
            seen.add(flat)
    with args.out.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in kept)
    summary = f"kept {len(kept)}, dropped {dict(dropped)} against {len(references)} references"
    sys.stdout.write(summary + "\n")


if __name__ == "__main__":
    main()

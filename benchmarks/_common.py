"""Shared helpers of the benchmark scripts: arguments, data, timing, tables, machine state."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

QUESTIONS = [
    "민법상 채권자대위권의 요건은 무엇인가요?",
    "법인세 중간예납 기한이 언제예요?",
    "조선 후기 실학자의 주장으로 옳은 것은?",
    "냉동기의 성적계수를 구하는 방법 알려줘",
    "What is a Fourier transform?",
    "함수 f(x)=x^3-3x의 극댓값은?",
    "항공기 엔진 정비 시 토크 렌치 사용법",
    "회계에서 감가상각 방법 중 정률법이란?",
]
"""Short everyday questions for latency runs (no data needed)."""


def parser(description: str) -> argparse.ArgumentParser:
    """The arguments every benchmark takes."""
    from langchain_domain_router.classifier import default_model_path

    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--model", default=str(default_model_path()), help="model dir (default: embedded)"
    )
    p.add_argument("--quick", action="store_true", help="a short run (fewer repeats, a sample)")
    p.add_argument("--data", default=str(SHARED), help="the shared data folder")
    return p


def check_model(path: str) -> None:
    """Exit with a clear message when the model directory is missing."""
    if not (Path(path) / "config.json").is_file():
        sys.exit(f"no model at {path}: pass --model DIR (a saved sequence classifier)")


def _pairs(load: Callable[[], Iterable[Any]]) -> list[tuple[str, str]]:
    """``(text, label)`` rows from a training-data loader; empty when the data is absent."""
    from langchain_domain_router.data import DataError

    try:
        return [(row.text, row.label) for row in load()]
    except DataError:
        return []


def load_kmmlu(data: str, split: str) -> list[tuple[str, str]]:
    """``(question, subject)`` rows of a KMMLU split; empty when the data is absent."""
    from langchain_domain_router.data import load_kmmlu as load

    return _pairs(lambda: load(Path(data) / "kmmlu", split))


def load_synthetic(data: str) -> list[tuple[str, str]]:
    """``(text, label)`` rows of the synthetic set; empty when absent."""
    from langchain_domain_router.data import load_labelled_folder

    return _pairs(lambda: load_labelled_folder(Path(data) / "synthetic"))


def sample(rows: Sequence[Any], size: int | None, seed: int = 0) -> list[Any]:
    """A fixed-seed sample of ``size`` rows (all rows when ``size`` is ``None``)."""
    if size is None or size >= len(rows):
        return list(rows)
    return random.Random(seed).sample(list(rows), size)  # noqa: S311 - a sample, not a secret


def timings_ms(fn: Callable[[], object], repeats: int, warmup: int = 20) -> list[float]:
    """Milliseconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def p50_p99(values: Sequence[float]) -> tuple[float, float]:
    """Median and 99th percentile."""
    return statistics.median(values), percentile(values, 99)


def table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print a Markdown table."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(_cell(value) for value in row) + " |")
    sys.stdout.flush()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def machine_state() -> None:
    """Print the machine, the library versions and what else was running."""
    import torch
    import transformers

    load = os.getloadavg()
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(
        f"- python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, torch threads {torch.get_num_threads()}"
    )
    print(f"- load average (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    try:
        top = subprocess.run(
            ["top", "-bn1", "-w", "160"],  # noqa: S607 - reads the load only; absent is fine
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return
    busy = [line for line in top[7:] if line.split() and _cpu(line) >= 5.0]
    print(
        "- other processes using >= 5% CPU at the start: "
        + (
            "; ".join(" ".join(line.split()[8:9] + line.split()[11:]) for line in busy[:6])
            or "none"
        )
    )


def _cpu(line: str) -> float:
    try:
        return float(line.split()[8])
    except (IndexError, ValueError):
        return 0.0


def model_summary(path: str) -> str:
    """One line: the model's size and version, read from its config."""
    config = json.loads((Path(path) / "config.json").read_text())
    from langchain_domain_router.classifier import Calibration

    settings = Calibration.of(config)
    if config.get("members"):  # an ensemble: each member's line
        members = "; ".join(
            f"{m['weight']} x {model_summary(str(Path(path) / m['path']))}"
            for m in config["members"]
        )
        return f"{path}: ensemble, version {settings.model_version}: {members}"
    encoder = config.get("base_classifier") or config  # a composite: its encoder's shape
    branch = ""
    if config.get("ngram_buckets"):
        branch = (
            f" + {config.get('ngram_input', 'input_ids')} n-gram branch "
            f"({config['ngram_buckets']:,} buckets)"
        )
    return (
        f"{path}: {config.get('model_type')} {encoder.get('num_hidden_layers')} layers x "
        f"{encoder.get('hidden_size')}{branch}, vocab {config.get('vocab_size')}, "
        f"{len(config.get('id2label', {}))} labels, max_length {settings.max_length}, "
        f"version {settings.model_version}"
    )

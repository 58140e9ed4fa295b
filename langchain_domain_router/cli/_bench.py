"""``domain-router bench``: measure the classifier on this machine and save a plot.

Two sweeps, with a progress bar: latency and throughput by batch size (one
``classify_texts`` call per batch), and throughput and latency by the number of
concurrent async callers (``ainvoke`` with request coalescing, as the server runs it).
The results are printed as tables and saved as ``bench.json`` and ``bench.png``
(``matplotlib`` needed for the plot: the ``[bench]`` or ``[train]`` extra).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import platform
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_domain_router.classifier import available_cpus, default_threads

BENCH_QUESTIONS = (
    "민법상 채권자대위권을 행사하기 위한 요건은 무엇인가요?",
    "법인세 중간예납 기한이 언제예요?",
    "조선 후기 실학자의 주장으로 옳은 것은?",
    "냉동기의 성적계수를 구하는 방법 알려줘",
    "What is a Fourier transform?",
    "함수 f(x)=x^3-3x의 극댓값은?",
    "항공기 엔진 정비 시 토크 렌치의 올바른 사용법과 주의해야 할 점을 설명해 주세요",
    "회계에서 감가상각 방법 중 정률법이란?",
    "다음 중 토양의 양이온 교환 용량에 가장 큰 영향을 주는 요인은 무엇인가? "
    "유기물 함량, 점토 광물의 종류, 토양 pH, 그리고 토양 수분 상태를 모두 고려하시오.",
    "근로기준법상 연차 유급휴가는 몇 일인가요?",
    "TCP와 UDP의 차이를 설명하시오",
    "콘크리트의 압축강도 시험 방법은?",
)
"""Questions of KMMLU-like lengths (8 to 60 tokens), used without ``--kmmlu``."""


@dataclass
class BenchPoint:
    """One measured setting."""

    x: int
    questions_per_s: float
    p50_ms: float
    p99_ms: float


@dataclass
class BenchResult:
    """Everything one ``bench`` run measured, with the machine it ran on."""

    model: str
    backend: str
    threads: int
    machine: dict[str, Any]
    batch: list[BenchPoint] = field(default_factory=list)
    concurrency: list[BenchPoint] = field(default_factory=list)

    def tables(self) -> str:
        """The results as two Markdown tables."""
        lines = [
            f"model {self.model} ({self.backend} backend, {self.threads} threads), "
            f"{self.machine['cpus']} usable CPUs, load {self.machine['load']}",
        ]
        for title, name, points in (
            ("Batch size (one classify_texts call per batch)", "batch", self.batch),
            ("Concurrent ainvoke callers (coalescing on)", "callers", self.concurrency),
        ):
            lines += [
                "",
                f"{title}",
                "",
                f"| {name} | questions/s | p50 ms | p99 ms |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {p.x} | {p.questions_per_s:,.0f} | {p.p50_ms:.2f} | {p.p99_ms:.2f} |"
                for p in points
            ]
        return "\n".join(lines)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _point(x: int, latencies_s: Sequence[float], questions: int, wall_s: float) -> BenchPoint:
    return BenchPoint(
        x=x,
        questions_per_s=questions / wall_s,
        p50_ms=statistics.median(latencies_s) * 1000,
        p99_ms=_percentile(latencies_s, 99) * 1000,
    )


class _Progress:
    """A progress bar: tqdm when installed, else one line per step on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar: Any = None
        self._done = 0
        self._total = total
        self._enabled = enabled
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, desc="bench", unit="step")

    def step(self, label: str) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(label)
            self._bar.update()
        elif self._enabled:
            sys.stderr.write(f"[{self._done}/{self._total}] {label}\n")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _batch_point(classifier: Any, texts: Sequence[str], size: int, seconds: float) -> BenchPoint:
    chunks = itertools.cycle(
        [list(itertools.islice(itertools.cycle(texts), start, start + size)) for start in range(8)]
    )
    classifier.classify_texts(next(chunks))
    latencies: list[float] = []
    begin = time.perf_counter()
    while time.perf_counter() - begin < seconds or len(latencies) < 5:
        start = time.perf_counter()
        classifier.classify_texts(next(chunks))
        latencies.append(time.perf_counter() - start)
    return _point(size, latencies, size * len(latencies), time.perf_counter() - begin)


async def _callers(classifier: Any, texts: Sequence[str], callers: int, seconds: float) -> Any:
    questions: Iterator[str] = itertools.cycle(texts)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await classifier.ainvoke(next(questions))
            latencies.append(time.perf_counter() - start)

    begin = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return _point(callers, latencies, len(latencies), time.perf_counter() - begin)


def run_bench(
    model: str = "default",
    *,
    backend: str = "auto",
    num_threads: int | None = None,
    batch_sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
    concurrency: Sequence[int] = (1, 4, 16, 64),
    seconds: float = 1.0,
    texts: Sequence[str] = BENCH_QUESTIONS,
    progress: bool = True,
) -> BenchResult:
    """Measure a classifier by batch size and by concurrent callers.

    Args:
        model: ``"default"`` or a model directory.
        backend: ``"auto"``, ``"onnx"`` or ``"torch"``.
        num_threads: Intra-op threads (``None``: chosen from the machine).
        batch_sizes: Batch sizes to measure.
        concurrency: Numbers of concurrent callers to measure.
        seconds: Time spent on each setting.
        texts: The questions (cycled).
        progress: Show a progress bar.

    Returns:
        The measurements.

    Raises:
        ValueError: If ``texts`` is empty or a size is not positive.
    """
    import os

    from langchain_domain_router.classifier import DomainClassifier, resolve_model_path

    if not texts or min((*batch_sizes, *concurrency), default=1) < 1:
        msg = "bench needs questions and positive batch sizes and caller counts"
        raise ValueError(msg)
    path = resolve_model_path(model)
    options: dict[str, Any] = {"backend": backend, "num_threads": num_threads}
    largest = max(batch_sizes, default=1)
    plain = DomainClassifier.from_pretrained(path, batch_size=largest, **options)
    bar = _Progress(1 + len(batch_sizes) + len(concurrency), progress)
    plain.load()
    bar.step("loaded")
    result = BenchResult(
        model=plain.model_version,
        backend=plain.resolved_backend,
        threads=num_threads or default_threads(),
        machine={
            "cpus": available_cpus(),
            "load": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
    )
    for size in batch_sizes:
        result.batch.append(_batch_point(plain, texts, size, seconds))
        bar.step(f"batch {size}")
    # The same loaded model (one per process), called the way the server calls it.
    coalesced = DomainClassifier.from_pretrained(path, coalesce_ms=0.0, **options)
    for callers in concurrency:
        result.concurrency.append(asyncio.run(_callers(coalesced, texts, callers, seconds)))
        bar.step(f"{callers} callers")
    bar.close()
    return result


def save_bench(result: BenchResult, out_dir: str | Path) -> list[Path]:
    """Write ``bench.json`` and, when matplotlib is installed, ``bench.png``.

    Args:
        result: The measurements.
        out_dir: The folder to write to (created).

    Returns:
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "bench.json"]
    written[0].write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    _plot(left, result.batch, "batch size", "latency per batch (ms)")
    twin = left.twinx()
    twin.plot([p.x for p in result.batch], [p.questions_per_s for p in result.batch], "g--o")
    twin.set_ylabel("questions/s", color="g")
    _plot(right, result.concurrency, "concurrent callers", "latency per call (ms)")
    twin_right = right.twinx()
    twin_right.plot(
        [p.x for p in result.concurrency], [p.questions_per_s for p in result.concurrency], "g--o"
    )
    twin_right.set_ylabel("questions/s", color="g")
    figure.suptitle(
        f"{result.model}: {result.backend}, {result.threads} threads, {result.machine['cpus']} CPUs"
    )
    figure.tight_layout()
    written.append(out / "bench.png")
    figure.savefig(written[-1], dpi=110)
    plt.close(figure)
    return written


def _plot(axes: Any, points: Sequence[BenchPoint], xlabel: str, ylabel: str) -> None:
    xs = [p.x for p in points]
    axes.plot(xs, [p.p50_ms for p in points], "b-o", label="p50")
    axes.plot(xs, [p.p99_ms for p in points], "r-^", label="p99")
    axes.set_xscale("log", base=2)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.legend(loc="upper left")
    axes.grid(alpha=0.3)


def read_questions(path: str | Path) -> list[str]:
    """Questions from a text file, one per non-empty line.

    Raises:
        ValueError: If the file is missing or holds no question.
    """
    file = Path(path)
    if not file.is_file():
        msg = f"no questions file at {str(path)!r}"
        raise ValueError(msg)
    questions = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    if not any(questions):
        msg = f"{str(path)!r} holds no question"
        raise ValueError(msg)
    return [q for q in questions if q]


def int_list(text: str) -> list[int]:
    """Parse ``"1,8,32"`` (for the command line)."""
    return [int(part) for part in text.split(",") if part.strip()]

"""``domain-router measure-quality`` over real HTTP against the fake OpenAI server."""

import csv

import yaml

from langchain_domain_router import RouterConfig
from langchain_domain_router.cli import main

HEADER = ["question", "answer", "A", "B", "C", "D", "Category", "Human Accuracy"]


def write_kmmlu(folder, subject, answers):
    with (folder / f"{subject}-test.csv").open("w", encoding="utf-8", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(HEADER)
        for i, answer in enumerate(answers):
            writer.writerow([f"{subject} 문제 {i}", answer, "가", "나", "다", "라", subject, 0.5])


def test_measure_quality_writes_the_matrix(tmp_path, fake_openai, capsys):
    kmmlu = tmp_path / "kmmlu"
    kmmlu.mkdir()
    write_kmmlu(kmmlu, "Law", [1, 1, 1, 2])
    write_kmmlu(kmmlu, "korean-history", [1, 3, 3, 3])  # upstream's lower-case file name
    kwargs = {"base_url": fake_openai.base_url, "api_key": "test", "max_retries": 0}
    config = {
        "experts": [
            {
                "name": "humss",
                "supercategories": ["HUMSS"],
                "candidates": [
                    # the fake answers "[model] 답변: <prompt>": the first option letter it
                    # names is the prompt's "A", so its accuracy is the share of A answers
                    {"model": "openai:fake-answer", "model_kwargs": kwargs},
                    {"model": "openai:fake-500", "model_kwargs": kwargs},
                ],
            }
        ],
        "fallback": {"name": "general"},
    }
    source = tmp_path / "router.yaml"
    source.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = tmp_path / "measured.yaml"
    argv = ["measure-quality", "--config", str(source), "--kmmlu", str(kmmlu)]
    assert main([*argv, "--per-domain", "10", "--out", str(out)]) == 0
    answers, failing = RouterConfig.from_file(out).experts[0].candidates
    assert answers.quality == {"Korean-History": 0.25, "Law": 0.75}
    assert failing.quality == {"Korean-History": 0.0, "Law": 0.0}
    assert "| Law | 0.75 | 0.00 |" in capsys.readouterr().out


def test_measure_quality_reports_bad_input_in_one_line(tmp_path, capsys):
    code = main(
        [
            "measure-quality",
            "--config",
            str(tmp_path / "nope.yaml"),
            "--kmmlu",
            str(tmp_path),
            "--out",
            str(tmp_path / "o.yaml"),
        ]
    )
    assert code == 2
    assert "router config file not found" in capsys.readouterr().err

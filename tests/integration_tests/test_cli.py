"""The ``domain-router`` command line, offline."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_domain_router import RouterConfig, cli
from langchain_domain_router.classifier import default_model_path
from tests.integration_tests._servers import REPO_ROOT, child_env

QUESTION = "미분계수의 정의를 설명해 주세요"
MAKE_QUESTION = re.search(
    r"^QUESTION \?= (.+)$", (REPO_ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE
).group(1)  # type: ignore[union-attr]
"""The question `make demo` routes."""


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_classify_json(math_checkpoint, capsys):
    assert cli.main(["classify", QUESTION, "--model", str(math_checkpoint), "--json"]) == 0
    prediction = json.loads(capsys.readouterr().out)
    assert prediction["label"] == "Math" and len(prediction["top_k"]) == 5


def test_classify_text_shows_domain_confidence_and_top_k(math_checkpoint, capsys):
    assert cli.main(["classify", QUESTION, "--model", str(math_checkpoint), "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "Math" in out and "0.998" in out and "STEM" in out


def test_route_runs_the_whole_graph_offline(math_checkpoint, capsys):
    assert cli.main(["route", QUESTION, "--model", str(math_checkpoint), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["answer"].startswith("[offline expert]")
    assert "science" in result["answer"] and "openai:gpt-4o" in result["answer"]
    assert result["routing"]["offline"] and result["routing"]["expert"] == "science"


def test_route_with_an_openai_compatible_endpoint_gets_real_answers(
    math_checkpoint, fake_openai, monkeypatch, capsys
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cli-key-0000")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    assert cli.main(["route", QUESTION, "--model", str(math_checkpoint), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["answer"] == f"[gpt-4o] 답변: {QUESTION}"
    assert not result["routing"]["offline"] and result["routing"]["expert"] == "science"


def test_route_text_labels_the_offline_expert(math_checkpoint, capsys):
    assert cli.main(["route", QUESTION, "--model", str(math_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "offline expert" in out and "science" in out


def test_bad_input_exits_2(math_checkpoint, capsys):
    assert cli.main(["route", "   ", "--model", str(math_checkpoint)]) == 2
    assert "empty" in capsys.readouterr().err
    assert cli.main(["serve", "--config", "/nonexistent/router.yaml"]) == 2


def test_training_commands_mount_when_the_module_exists(monkeypatch, capsys):
    training = types.ModuleType("langchain_domain_router.training")

    def train(args: argparse.Namespace) -> int:
        sys.stdout.write(f"trained {args.epochs}\n")
        return 0

    def register_cli(commands: argparse._SubParsersAction) -> None:
        parser = commands.add_parser("train")
        parser.add_argument("--epochs", type=int, default=1)
        parser.set_defaults(handler=train)

    training.register_cli = register_cli  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langchain_domain_router.training", training)
    assert cli.main(["train", "--epochs", "3"]) == 0
    assert capsys.readouterr().out == "trained 3\n"


def _domain_router(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "langchain_domain_router", *args]
    return subprocess.run(  # noqa: S603 - a fixed command line
        command, capture_output=True, text=True, env=child_env(), cwd=REPO_ROOT, timeout=300
    )


def _needs_shipped_model() -> None:
    if not (default_model_path() / "config.json").is_file():
        pytest.skip("the shipped default model (langchain_domain_router/models/default) is absent")


def test_readme_demo_command_with_the_shipped_model(tmp_path: Path):
    _needs_shipped_model()
    done = _domain_router("route", MAKE_QUESTION, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"].startswith("[offline expert]")


def test_make_demo_is_quiet_one_info_line_naming_the_key():
    _needs_shipped_model()
    done = _domain_router("route", MAKE_QUESTION)
    assert done.returncode == 0, done.stderr
    assert "law" in done.stdout and "offline expert" in done.stdout
    assert "Error" not in done.stdout and "Missing credentials" not in done.stdout
    [line] = done.stderr.splitlines()  # no progress bar, no error-looking line
    assert line.startswith("INFO: ") and "OPENAI_API_KEY" in line, line


def test_verbose_shows_the_debug_log_and_quiet_is_restored(math_checkpoint, capsys):
    assert cli.main(["route", QUESTION, "--model", str(math_checkpoint), "-v"]) == 0
    debug = [line for line in capsys.readouterr().err.splitlines() if line.startswith("DEBUG ")]
    assert any("science (openai:gpt-4o): no API key is set" in line for line in debug), debug
    # "ready" is logged on every load, also when the process-wide registry already holds it
    assert any(".classifier: classifier " in line and " ready (" in line for line in debug), debug
    assert cli.main(["route", QUESTION, "--model", str(math_checkpoint)]) == 0
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("INFO: no chat model available for ") and "OPENAI_API_KEY" in line


def test_bad_arguments_fail_before_any_heavy_import():
    # `route ""` must fail at once: nothing heavy (torch, transformers, LangChain) is
    # imported before the arguments are checked. Timings are in the report, not here.
    probe = (
        "import sys\n"
        "from langchain_domain_router.cli import main\n"
        "codes = [main(['route', '']), main(['classify', '  ']),"
        " main(['route', 'q', '--config', 'missing.yaml'])]\n"
        "heavy = {'torch', 'transformers', 'langchain_core', 'pydantic'}\n"
        "print(codes, sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert done.stdout.strip() == "[2, 2, 2] []", done.stdout + done.stderr
    assert done.stderr.count("domain-router: error:") == 3


def test_long_questions_are_cut_in_the_text_output(math_checkpoint, capsys):
    # One long word: a single [UNK] token for the tiny test model, 3,000 characters on screen.
    long_question = QUESTION + " " + "가" * 3000
    assert cli.main(["route", long_question, "--model", str(math_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert len(out) < 2000 and "…" in out
    assert cli.main(["classify", long_question, "--model", str(math_checkpoint)]) == 0
    assert len(capsys.readouterr().out) < 1000


def test_export_onnx_then_classify_runs_the_export(math_checkpoint, tmp_path, capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(math_checkpoint, model)
    assert cli.main(["export-onnx", "--model", str(model), "--int8"]) == 0
    assert "default graph: float32" in capsys.readouterr().out  # int8 unchecked: not default
    meta = json.loads((model / "onnx" / "export.json").read_text())
    assert meta["default"] == "float32" and "int8_check" not in meta
    assert (model / "onnx" / "model.onnx").is_file() and (
        model / "onnx" / "model.int8.onnx"
    ).is_file()
    from langchain_domain_router import DomainClassifier

    assert DomainClassifier.from_pretrained(model).resolved_backend == "onnx"
    assert cli.main(["classify", QUESTION, "--model", str(model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "Math"
    assert cli.main(["export-onnx", "--model", str(tmp_path / "nope")]) == 2
    assert "not a model directory" in capsys.readouterr().err


def test_bench_prints_tables_and_saves_the_plot(math_checkpoint, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench"
    argv = ["bench", "--model", str(math_checkpoint), "--batch-sizes", "1,4"]
    argv += ["--concurrency", "1,8", "--seconds", "0.05", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| batch | questions/s |" in printed and "| callers |" in printed
    result = json.loads((out / "bench.json").read_text())
    assert [p["x"] for p in result["batch"]] == [1, 4]
    assert [p["x"] for p in result["concurrency"]] == [1, 8]
    assert all(p["questions_per_s"] > 0 and p["p99_ms"] >= p["p50_ms"] for p in result["batch"])
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["bench", "--model", str(math_checkpoint), "--batch-sizes", "0"]) == 2


def test_route_without_a_question_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["route"])
    assert exited.value.code == 2
    assert "the following arguments are required: question" in capsys.readouterr().err


def test_every_argument_of_every_command_says_what_it_is_for():
    def undocumented(parser: argparse.ArgumentParser, path: str) -> Iterator[str]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from undocumented(sub, f"{path} {name}")
            elif not action.help:
                yield f"{path} {'/'.join(action.option_strings) or action.dest}"

    assert list(undocumented(cli.build_parser(), "domain-router")) == []


def test_help_imports_no_training_library():
    done = subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-X", "importtime", "-m", "langchain_domain_router", "--help"],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == 0 and "train" in done.stdout and "init" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()}
    assert "langchain_domain_router.cli" in imported
    assert {"sklearn", "matplotlib"} & imported == set()


def test_init_writes_a_commented_starter_config_and_keeps_an_existing_one(tmp_path, capsys):
    target = tmp_path / "router.yaml"
    assert cli.main(["init", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("#") and str(target) in capsys.readouterr().out
    config = RouterConfig.from_file(target)
    assert config.experts and config.fallback.name == "general"
    target.write_text("# mine\n", encoding="utf-8")
    assert cli.main(["init", str(target)]) == 2
    assert "--force" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "# mine\n"
    assert cli.main(["init", str(target), "--force"]) == 0
    assert target.read_text(encoding="utf-8") == text


def test_an_off_topic_question_shows_no_domain_in_the_text_output():
    _needs_shipped_model()
    done = _domain_router("route", "오늘 저녁 뭐 먹을까?")
    assert done.returncode == 0, done.stderr
    [domain] = [line for line in done.stdout.splitlines() if line.startswith("domain")]
    assert domain.split(maxsplit=1)[1].startswith("no domain (best guess: "), domain
    assert "low_confidence" in done.stdout and "이유: 분야를 정할 수 없습니다" in done.stdout

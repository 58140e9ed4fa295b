"""The package's shape: what importing it does, and who imports whose private modules."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "langchain_domain_router"
CORE_MODULES = [
    "langchain_domain_router",
    "langchain_domain_router.router",
    "langchain_domain_router.graph",
    "langchain_domain_router.graph.experts",
    "langchain_domain_router.classifier",
    "langchain_domain_router.audit",
    "langchain_domain_router.feedback",
    "langchain_domain_router.platform",
    "langchain_domain_router.quality",
    "langchain_domain_router.cli",
]


def _python(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter (nothing imported yet)."""
    return subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )


def test_importing_the_package_starts_no_thread_and_builds_nothing():
    script = (
        "import sys, threading\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    __import__(name)\n"
        "import langchain_domain_router as p\n"
        "[getattr(p, name) for name in p.__all__]\n"
        "print(threading.active_count(), 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    assert _python(script).stdout.split() == ["1", "False", "False"]


def test_the_classifier_path_does_not_import_langgraph():
    """LangGraph is most of a fresh process's import time; classifying never needs it."""
    script = (
        "import sys\n"
        "from langchain_domain_router import DomainClassifier, DomainPrediction\n"
        "from langchain_domain_router.classifier import ClassifierSettings\n"
        "print('langgraph' in sys.modules)\n"
    )
    assert _python(script).stdout.split() == ["False"]


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_no_module_imports_a_private_module_of_another_subpackage():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        here = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
        for name in _imported_modules(path):
            parts = name.split(".")
            if parts[0] != "langchain_domain_router":
                continue
            for depth in range(2, len(parts)):
                package = tuple(parts[:depth])
                private = parts[depth].startswith("_") and len(package) > 1
                if private and package != here[: len(package)]:
                    offenders.append(f"{path.relative_to(PACKAGE)}: {name}")
                    break
    assert offenders == []


def test_training_without_its_extra_names_the_extra():
    script = (
        "import sys\n"
        "sys.modules['sklearn'] = None\n"
        "try:\n"
        "    import langchain_domain_router.training\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "from langchain_domain_router.cli import main\n"
        "print(main(['train', '--shared', '.', '--output-dir', 'x']))\n"
    )
    done = _python(script)
    lines = done.stdout.splitlines()
    assert lines[0].endswith('pip install "langchain-domain-router[train]"'), lines
    assert lines[-1] == "2"
    assert '[train]"' in done.stderr

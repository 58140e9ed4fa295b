"""Every notebook runs top to bottom (on a copy: the committed outputs stay as they are)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from langchain_domain_router.classifier import default_model_path

ROOT = Path(__file__).parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHARED = ROOT.parent / "shared" / "data"
CELL_TIMEOUT_S = 120
"""What a reader waits for one cell at most: a cell that works longer is a broken notebook
(02's cells take well under a minute on 2 cores: it trains a toy and evaluates a sample)."""


@pytest.mark.skipif(
    not (default_model_path() / "config.json").is_file(), reason="no embedded default model"
)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel is a fresh process: let it import this checkout even when not installed.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    notebook = nbformat.read(path, as_version=4)
    if notebook.metadata.get("domain_router", {}).get("needs_shared_data") and not SHARED.is_dir():
        pytest.skip("needs ../shared/data")
    NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors

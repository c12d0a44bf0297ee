"""examples/explore.ipynb runs headless, top to bottom, in a local Jupyter kernel (nbclient):
any error in any cell fails the test, and the rich outputs are HTML with thumbnails."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "examples" / "explore.ipynb"
KERNEL = "visdiff-test"


def install_kernel(jupyter_dir: Path) -> None:
    """A kernel spec for this interpreter that imports visdiff from this checkout."""
    spec_dir = jupyter_dir / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "visdiff test kernel", "language": "python",
        "env": {"PYTHONPATH": pythonpath},
    }))


def test_explore_notebook_runs_headless(tmp_path, monkeypatch):
    install_kernel(tmp_path / "jupyter")
    # Kernel specs, connection files and IPython's profile go to the test's folder, not $HOME.
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, kernel_name=KERNEL, timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if o.output_type == "execute_result" and "text/html" in o.data]
    # compare's result, three galleries and the re-ranked table.
    assert len(html) == 5
    assert "visdiff-ranking" in html[0] and "data:image/jpeg;base64," in html[0]
    assert "brass instruments" in html[3] and "visdiff-ranking" in html[3]
    assert all("data:image/jpeg;base64," in h for h in (html[1], html[2], html[4]))
    printed = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert "'embed'" in printed

"""nbdev-style gates: committed notebooks carry no outputs, show the smoke switch, end in asserts."""
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    dirty = [i for i, c in enumerate(code_cells(path)) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run `nbstripout {path}`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_smoke_switch_is_visible_and_notebook_ends_in_asserts(path):
    cells = code_cells(path)
    first = cells[0]
    assert "parameters" in first["metadata"].get("tags", []) and "WORKSHOP_SMOKE" in "".join(first["source"])
    assert "assert " in "".join(cells[-1]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_in_nbstripout_form(path):
    """Else every fresh clone (whose git filter runs nbstripout) shows the notebook as modified."""
    import subprocess
    import sys
    stripped = subprocess.run([sys.executable, "-m", "nbstripout", "-t", str(path)], capture_output=True,
                              text=True, check=True).stdout
    assert stripped == path.read_text(), f"run `nbstripout {path}` and commit the result"

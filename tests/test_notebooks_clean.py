"""nbdev-style gates: committed notebooks carry no outputs, show the smoke switch, end in asserts, and
follow the lesson shape (objectives and time, a summary linking on; exercises: tests/test_exercises.py)."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def cells(path):
    return json.loads(path.read_text())["cells"]


def code_cells(path):
    return [c for c in cells(path) if c["cell_type"] == "code"]


def text(cell) -> str:
    return "".join(cell["source"])


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_opens_with_time_and_objectives(path):
    opening = text(cells(path)[0])
    assert opening.startswith(f"# {path.name[:2]} ·"), "the first cell is the title: '# NN · Title'"
    assert "**Time:**" in opening and "## What you will learn" in opening


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_summary_links_the_next_lesson(path):
    summaries = [text(c) for c in cells(path) if c["cell_type"] == "markdown" and text(c).startswith("## Summary")]
    assert summaries, "no markdown cell starting with '## Summary'"
    later = [p.name for p in NOTEBOOKS if p.name > path.name]
    if later:
        assert re.search(rf"\({re.escape(later[0])}\)", summaries[-1]), f"the summary should link {later[0]}"

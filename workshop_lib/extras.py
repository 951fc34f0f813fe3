"""Packages only some lessons need, installed the first time a lesson asks (taught in 02, 04 to 07).

``require("rag")`` makes sure every pin of ``requirements-rag.txt`` is installed in the running
Python environment and pip-installs the file if not, so ``python lab.py start`` stays quick and a
lesson pays only for what it uses. A first line ``# pip-options: --no-deps`` is passed on to pip. A pin
with an environment marker (``chainlit==2.12.0 ; python_version < "3.14"``) counts only where its marker
holds, as pip installs it only there.
"""
import importlib
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from tqdm.auto import tqdm

from .config import REPO_ROOT, cache_dir
from .errors import DataFileError, WorkshopError

PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#\\]+)")
OPTION = re.compile(r"\s--?[A-Za-z][\w-]*(?:[= ]\S+)?")  # --hash=sha256:..., per-requirement pip options


def extra_names(root: Path = REPO_ROOT) -> list:
    """The extras this checkout offers: every ``requirements-NAME.txt`` at the repository root."""
    return sorted(p.stem.removeprefix("requirements-") for p in root.glob("requirements-*.txt"))


def requirement_file(name: str, root: Path = REPO_ROOT) -> Path:
    path = root / f"requirements-{name}.txt"
    if not path.is_file():
        raise DataFileError(f"No extra {name!r}: {path} does not exist.",
                            f"Use one of: {', '.join(extra_names(root))}.")
    return path


def pins(path: Path) -> list:
    """``(name, version, marker)`` for each ``name==version`` line of ``path`` (continuation lines joined);
    ``marker`` is its environment marker's text, or None."""
    text = re.sub(r"\\\r?\n", " ", path.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        if m := PIN.match(line):
            try:
                marker = Requirement(OPTION.sub(" ", line.split(" #")[0])).marker
            except InvalidRequirement as exc:
                raise DataFileError(f"{path}: {line.strip()!r} is not a requirement pip reads: {exc}.",
                                    "Write its marker as PEP 508 says, e.g. python_version < \"3.14\".") from exc
            found.append((m.group(1), m.group(2), str(marker) if marker else None))
    return found


def applies(marker) -> bool:
    """Whether a pin's environment marker holds in this Python (no marker: always)."""
    if marker is None:
        return True
    try:
        return Marker(marker).evaluate()
    except InvalidMarker as exc:
        raise DataFileError(f"The environment marker {marker!r} is not one pip reads: {exc}.",
                            "Write it as PEP 508 says, e.g. python_version < \"3.14\".") from exc


def skipped_pins(path: Path) -> list:
    """``(name, version, marker)`` of the pins of ``path`` that pip skips here: their marker is false."""
    return [pin for pin in pins(path) if not applies(pin[2])]


def missing_pins(path: Path) -> list:
    """``name==version`` pins of ``path`` that apply here (marker true or none) and are not installed."""
    missing = []
    for name, version, marker in pins(path):
        if not applies(marker):
            continue
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if not same_version(installed, version):
            missing.append(f"{name}=={version}")
    return missing


def same_version(installed, pinned: str) -> bool:
    """``2.13.0+cpu`` satisfies ``==2.13.0``: PEP 440 ignores a local label the pin does not name."""
    return installed is not None and (installed == pinned or installed.split("+")[0] == pinned)


def pip_options(path: Path) -> list:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    return first.split(":", 1)[1].split() if first.startswith("# pip-options:") else []


def require(name: str, root: Path = REPO_ROOT) -> None:
    """Install ``requirements-NAME.txt`` into this environment unless all its pins are already there."""
    path = requirement_file(name, root)
    missing = missing_pins(path)
    if not missing:
        return
    print(f"Installing what this lesson needs from {path.name} (once): {', '.join(missing[:6])}"
          + (" ..." if len(missing) > 6 else ""), flush=True)
    run_pip(["install", *pip_options(path), "-r", str(path)], cache_dir() / f"pip-{name}.log", desc=f"pip {name}")
    importlib.invalidate_caches()  # let this kernel import what was just installed


def hashed_install_arguments(requirements: Path) -> list:
    """pip's arguments for a hash-pinned lock: ``--require-hashes --no-deps`` (the file's first line) makes pip
    refuse a package that is not listed with its hash, or whose download does not match."""
    return ["install", *pip_options(requirements), "-r", str(requirements)]


def run_pip_for(tool: str, retry: str, args: list, log: Path, python, progress: bool, what: str) -> None:
    """``run_pip`` in ``tool``'s own venv (``python``); a failure keeps pip's cause and names ``retry``, the
    command that retries the install."""
    try:
        run_pip(args, log, python=python, desc=f"pip {what}", progress=progress)
    except WorkshopError as exc:
        raise WorkshopError(f"Installing {what} for {tool} failed: {exc.problem}",
                            f"{exc.fix.split(' Then run:')[0]} Then run `{retry}` again.") from None


def run_pip(args: list, log: Path, python=None, desc: str = "pip", progress: bool = True) -> None:
    """Run pip (of ``python``, default this interpreter), its output appended to ``log``, a bar
    counting the packages it handles; a failure raises with the log's last lines."""
    cmd = [str(python or sys.executable), "-m", "pip", "--disable-pip-version-check", *args]
    with open(log, "a", encoding="utf-8") as out, tqdm(desc=desc, unit=" pkg", disable=not progress) as bar:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        try:
            for line in proc.stdout:
                out.write(line)
                bar.update(line.startswith(("Collecting", "Requirement already satisfied")))
        finally:  # Ctrl-C: pip must not go on writing into the environment behind our back
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    if proc.returncode != 0:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines(True)
        cause, fix = pip_failure_cause("".join(lines[-200:]), python_version(python))
        raise WorkshopError(f"pip failed (exit {proc.returncode}) while installing {desc.removeprefix('pip ')}"
                            f"{cause}:\n{''.join(lines[-10:])}", f"{fix} Then run: {' '.join(cmd)} (log: {log})")


WRONG_PYTHON = re.compile(r"Requires-Python|requires a different [Pp]ython")
NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
NO_NETWORK = re.compile(r"NewConnectionError|ProxyError|Max retries exceeded|Could not fetch URL|"
                        r"Temporary failure in name resolution|Name or service not known|SSLError|timed out")


def pip_failure_cause(output: str, python: str) -> tuple:
    """(cause, fix) read from pip's output: the Python version or the network when pip's own lines
    say so; the network is only a guess when nothing more precise is known."""
    missing = NO_MATCH.search(output)
    what = missing.group(1) if missing else "a package"
    if WRONG_PYTHON.search(output):
        return (f": {what} has no release for Python {python} (pip: \"require a different python version\")",
                f"Use a Python that {what} supports (pip's lines above give its Requires-Python range) "
                "instead of this one.")
    if NO_NETWORK.search(output):
        return (": pip could not reach the package index",
                "Check your network and proxy settings (HTTPS_PROXY, `pip config list`).")
    if missing:
        return (f": the package index has no {what} for Python {python} on this platform",
                "Check the pin and that pip uses the right index (`pip config list`).")
    return "", "Read the log; if it shows no cause, check that pip reaches PyPI."


def python_version(python=None) -> str:
    """``X.Y.Z`` of ``python`` (default: this interpreter)."""
    if python is None or Path(python) == Path(sys.executable):
        return sys.version.split()[0]
    out = subprocess.run([str(python), "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                         text=True)
    return out.stdout.strip() or "(unknown version)"

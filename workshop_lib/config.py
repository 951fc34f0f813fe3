"""Where things live and the few settings a learner may change (taught in 00_setup_and_first_chat).

Settings come from an environment variable ``WORKSHOP_<NAME>`` or, failing that, from an optional
``workshop.toml`` at the repository root (kept out of git), e.g.::

    slm_model = "phi-4-mini"
    llm_model = "qwen2.5-7b"
"""
import os
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from .errors import DataFileError, WorkshopError

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
CONFIG_FILE = REPO_ROOT / "workshop.toml"
RESULTS_DIR = REPO_ROOT / "results"  # what notebooks write (ignored by git)


def smoke_mode() -> bool:
    """True when ``WORKSHOP_SMOKE=1``: notebooks run fewer rounds and tokens through the same code."""
    return os.environ.get("WORKSHOP_SMOKE", "0").strip().lower() in ("1", "true", "yes")


def setting(name: str, default=None):
    """``WORKSHOP_<NAME>`` from the environment, else ``name`` from workshop.toml, else ``default``."""
    value = os.environ.get(f"WORKSHOP_{name.upper()}")
    if value not in (None, ""):
        return value
    return _config_file().get(name.lower(), default)


def int_setting(name: str, default=None, minimum: int = 0, example=None):
    """``setting(name)`` as a whole number; a value like ``"eight"`` names the setting and the fix."""
    return _number_setting(name, default, int, "a whole number", minimum, example)


def float_setting(name: str, default=None, minimum: float = 0, example=None):
    """``setting(name)`` as a number (seconds, for instance), checked like ``int_setting``."""
    return _number_setting(name, default, float, "a number", minimum, example)


def _number_setting(name: str, default, kind, described: str, minimum, example):
    value = setting(name, default)
    if value is None:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum:
        variable = f"WORKSHOP_{name.upper()}"
        source = variable if os.environ.get(variable) else f"`{name.lower()}` in {CONFIG_FILE.name}"
        example = example or (default if default is not None else minimum + 1)
        raise WorkshopError(f"The setting {source} is {value!r}, which is not {described} of at least {minimum}.",
                            f"Set {source} to {described} such as {example}, or remove it to use the default.")
    return number


def _config_file() -> dict:
    if not CONFIG_FILE.exists():
        return {}
    try:
        return tomllib.loads(CONFIG_FILE.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"{CONFIG_FILE} is not valid TOML: {exc}",
                            "Fix the line it names, or delete the file to use the defaults.") from exc


def cache_dir() -> Path:
    """Per-user cache for assembled models, the llama.cpp build and server state (never the repo)."""
    if os.environ.get("WORKSHOP_CACHE_DIR"):
        base = Path(os.environ["WORKSHOP_CACHE_DIR"])
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "local-llm-lab"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches" / "local-llm-lab"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "local-llm-lab"
    base.mkdir(parents=True, exist_ok=True)
    return base


def write_atomic(path: Path, text: str, mode: int = None) -> None:
    """Write through a temporary file, so a crash leaves the old file, never half a new one.

    Each writer gets its own temporary name, so two writers never mix their bytes: the last
    replace wins, whole. ``mode`` (e.g. 0o600 for a secret) defaults to the usual for new files."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        _replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def _replace(tmp, path: Path, tries: int = 20) -> None:
    """``os.replace``; Windows refuses it briefly while another writer replaces the same file."""
    for attempt in range(tries):
        try:
            return os.replace(tmp, path)
        except PermissionError:
            if sys.platform != "win32" or attempt == tries - 1:
                raise
            time.sleep(0.05)

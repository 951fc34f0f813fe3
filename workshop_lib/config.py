"""Where things live and the few settings a learner may change (taught in 00_setup_and_first_chat).

Settings come from an environment variable ``WORKSHOP_<NAME>`` or, failing that, from an optional
``workshop.toml`` at the repository root (kept out of git), e.g.::

    slm_model = "phi-4-mini"
    llm_model = "qwen2.5-7b"
"""
import os
import sys
import tomllib
from pathlib import Path

from .errors import DataFileError

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


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file, so a crash leaves the old file, never half a new one."""
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

"""The outcome cache: every answer and score, on disk, keyed by model, prompt and settings
(taught in 02_model_comparison, reused in 05_hybrid_routing).

One JSON line per outcome, appended as soon as it is scored, so an interrupted run loses at most
the request in flight and a rerun resumes where it stopped. A torn last line (a crash mid-write)
is dropped on load with a warning, never trusted.
"""
import hashlib
import json
import threading
import warnings
from pathlib import Path

from ..config import write_atomic
from ..errors import DataFileError


def outcome_key(model: str, messages: list, settings: dict) -> str:
    """A stable hash of what determines an answer: the model id, the exact messages, the settings."""
    blob = json.dumps({"model": model, "messages": messages, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


class OutcomeCache:
    """A JSONL file of outcomes (dicts with a ``key``); ``get(key)``, ``put(outcome)``, ``rows()``."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._rows = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
                self._rows[row["key"]] = row
            except (ValueError, KeyError, TypeError):
                if n < len(lines):
                    raise DataFileError(f"{self.path} line {n} is not an outcome record.",
                                        "Delete the file (it is a cache: the next run recomputes it).") from None
                warnings.warn(f"{self.path}: dropped a torn last line (an interrupted write).", stacklevel=2)
                write_atomic(self.path, "".join(line + "\n" for line in lines[:-1]))

    def get(self, key: str):
        return self._rows.get(key)

    def put(self, outcome: dict) -> None:
        """Append one outcome and flush it, so it survives an interrupted run."""
        line = json.dumps(outcome, sort_keys=True, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(line + "\n")
                out.flush()
            self._rows[outcome["key"]] = outcome

    def rows(self) -> list:
        return list(self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)


def load_outcomes(path, fix: str = "Regenerate it: python -m workshop_lib.eval run --full"):
    """An outcome file as a DataFrame (one row per outcome); a missing file names the command that makes it."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataFileError(f"No outcome file at {path}.", fix)
    return pd.DataFrame(OutcomeCache(path).rows())

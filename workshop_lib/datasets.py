"""Prompt sets and other files under data/, checked on load so a typo gives a clear message."""
import json
from pathlib import Path

from .config import DATA_DIR
from .errors import DataFileError


def load_prompts(name: str, data_dir: Path = DATA_DIR) -> list:
    """``data/prompts/NAME.json`` as a list of chat message lists (taught in 00 and 03).

    The file holds ``{"prompts": [{"id": ..., "system": optional, "user": ...}, ...]}``."""
    path = Path(data_dir) / "prompts" / f"{name}.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["prompts"]
    except FileNotFoundError:
        available = sorted(p.stem for p in path.parent.glob("*.json"))
        raise DataFileError(f"No prompt set {name!r} ({path}).", f"Use one of: {', '.join(available)}.") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataFileError(f"{path} is not a valid prompt set: {exc}",
                            'It must be {"prompts": [{"id": "...", "user": "..."}, ...]}.') from exc
    return [_messages(entry, path, i) for i, entry in enumerate(entries)]


def _messages(entry, path, index) -> list:
    if not isinstance(entry, dict) or not isinstance(entry.get("user"), str) or not entry["user"].strip():
        raise DataFileError(f"{path}: prompt #{index} has no text in 'user'.",
                            'Give every prompt a non-empty "user" string.')
    system = [{"role": "system", "content": entry["system"]}] if entry.get("system") else []
    return system + [{"role": "user", "content": entry["user"]}]

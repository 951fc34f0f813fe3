"""Shared fixtures, and the cache every test runs with.

No test writes to the learner's cache (``config.cache_dir()``: their server's key, records and logs):
- a test with none of the markers ``server``, ``browser``, ``install`` gets an empty cache of its own;
- a test with one of them shares one cache per test session in which the finished artifacts of the real
  cache (the llama-server build, the assembled models, converted ONNX models, Open WebUI's and GuideLLM's venvs) are
  linked, entry by entry, so they are reused and never rebuilt, while its own state stays in the temporary
  folder. Servers started there are stopped when the session ends.
"""
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from workshop_lib import config
from workshop_lib.runtime import endpoint, llamacpp, models, process, server

REAL_MARKERS = ("server", "browser", "install")  # tests that need the real build, models or installs


def _server_ready() -> bool:
    return llamacpp.is_built() and all(spec.path.exists() for spec in models.load_registry().values())


# Read from the real cache at import, before any fixture replaces it: the shared test cache links the same files.
REAL_CACHE = config.cache_dir()
needs_server = pytest.mark.skipif(
    not _server_ready(), reason="needs the llama-server build and assembled models (python -m workshop_lib setup)")


def needs_extra(name: str, *modules: str):
    """Skip unless the modules of extra ``name`` import here: the light CI leg and a fresh clone have
    only the core install, and a missing extra is not a failure of the code under test."""
    import importlib.util
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs the {name} extra ({', '.join(missing)} missing): "
                                                    f"python -m workshop_lib require {name}")


def connect_or_skip():
    """``wl.connect()`` for a server test's fixture: skipped with the reason, never a build or an install,
    when no endpoint is set and the embedded server's build or models are missing."""
    if not any(os.environ.get(v) for v in endpoint.ENDPOINT_VARIABLES) and not _server_ready():
        pytest.skip(needs_server.kwargs["reason"])
    return endpoint.connect(verbose=False)


@pytest.hookimpl(tryfirst=True)  # before `-m` selects: a needs_server test counts as a server test
def pytest_collection_modifyitems(items):
    for item in items:
        if needs_server.mark in item.iter_markers("skipif") and not item.get_closest_marker("server"):
            item.add_marker(pytest.mark.server)


def finished_artifacts(real: Path):
    """(folder, entry) pairs of the real cache that are complete, so a test never has to write into them."""
    complete = {"llama.cpp": lambda p: (p / "READY").exists(),
                "models": lambda p: p.is_file() and ".partial-" not in p.name and not p.name.startswith("."),
                "onnx": lambda p: (p / "genai_config.json").exists(),
                "webui": lambda p: p.name == "venv" and (p / ".installed").exists(),
                "peer": lambda p: p.name == "venv" and (p / ".installed").exists()}
    for folder, is_complete in complete.items():
        if (real / folder).is_dir():
            yield from ((folder, entry.name) for entry in sorted((real / folder).iterdir()) if is_complete(entry))


def link_real_artifacts(real: Path, cache: Path) -> None:
    for folder, name in finished_artifacts(real):
        (cache / folder).mkdir(parents=True, exist_ok=True)
        (cache / folder / name).symlink_to(real / folder / name, target_is_directory=(real / folder / name).is_dir())
    for folder in ("rag", "page"):  # small indexes: copied, so a test that adds one writes only here
        if (real / folder).is_dir():
            shutil.copytree(real / folder, cache / folder, symlinks=False)


def stop_everything_started_in(cache: Path) -> None:
    server.stop_server(cache / "server")
    for record in sorted((cache / "procs").glob("*.json")):
        process.stop(record.stem, cache / "procs")


@pytest.fixture(scope="session")
def shared_test_cache(tmp_path_factory):
    """The cache of the server/browser/install tests: the real cache's finished artifacts, linked."""
    cache = tmp_path_factory.mktemp("workshop-cache")
    link_real_artifacts(REAL_CACHE, cache)
    yield cache
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKSHOP_CACHE_DIR", str(cache))
        stop_everything_started_in(cache)


@pytest.fixture(scope="module", autouse=True)
def _module_cache(shared_test_cache):
    """Module-scoped fixtures (a connected lab, a running app) start before any test's own fixture: they
    get the shared test cache, never the learner's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKSHOP_CACHE_DIR", str(shared_test_cache))
        yield shared_test_cache


@pytest.fixture(autouse=True)
def _test_cache(request, monkeypatch, tmp_path_factory, _module_cache):
    """A unit test gets an empty cache of its own; a server/browser/install test keeps the shared one."""
    if any(request.node.get_closest_marker(m) for m in REAL_MARKERS):
        return _module_cache
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("WORKSHOP_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(autouse=True)
def _no_exercise_expectations(monkeypatch):
    """The test command's notebook pass sets these for the kernels; a test that calls a checker with a
    wrong answer on purpose must see a learner's setting, not a failing solved pass."""
    for name in ("WORKSHOP_EXPECT", "WORKSHOP_SOLUTIONS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """A registry with one tiny model whose two parts live in a throwaway package on sys.path."""
    def make(sha256=None, parts=(b"GGUF-part-one-", b"part-two")):
        pkg_root = tmp_path / "site"
        for n, payload in enumerate(parts, start=1):
            pkg = pkg_root / f"fakepart{n}"
            (pkg / "data").mkdir(parents=True)
            (pkg / "__init__.py").write_text("")
            (pkg / "data" / f"part{n:02d}.bin").write_bytes(payload)
        monkeypatch.syspath_prepend(str(pkg_root))
        import hashlib
        blob = b"".join(parts)
        entry = {"alias": "tiny", "title": "Tiny", "family": "test", "parameters": "0", "quantization": "none",
                 "license": "MIT", "chat_template": True, "role": "slm", "context": 64, "file": "tiny.gguf",
                 "size": len(blob), "sha256": sha256 or hashlib.sha256(blob).hexdigest(),
                 "parts": {"count": len(parts), "package": "fakepart{n}==1.0", "module": "fakepart{n}",
                           "file": "data/part{n:02d}.bin"}}
        registry = tmp_path / "models.json"
        registry.write_text(json.dumps({"models": [entry]}))
        monkeypatch.setattr(models, "REGISTRY_FILE", registry)
        monkeypatch.setenv("WORKSHOP_CACHE_DIR", str(tmp_path / "cache"))
        sys.modules.pop("fakepart1", None)
        return models.get_spec("tiny")
    return make

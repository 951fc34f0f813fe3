import json
import sys

import pytest

from workshop_lib.runtime import llamacpp, models


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


needs_server = pytest.mark.skipif(
    not llamacpp.is_built() or not all(models.load_registry()[a].path.exists() for a in models.load_registry()),
    reason="needs the llama-server build and assembled models (python -m workshop_lib setup)")

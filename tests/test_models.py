import os
import subprocess
import sys
from pathlib import Path

import pytest

from workshop_lib.runtime import convert, models
from workshop_lib.errors import DataFileError, ModelFileError, UnknownModelError



class InterruptedBar:
    """A progress bar whose first update is a Ctrl-C: the moment a copy or a stage is under way."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        raise KeyboardInterrupt

    def set_postfix_str(self, text):
        raise KeyboardInterrupt

def test_registry_has_the_three_models_with_their_roles():
    registry = models.load_registry()
    assert {a: s.role for a, s in registry.items()} == {
        "qwen2.5-coder-0.5b": "slm", "qwen2.5-coder-1.5b": "llm", "gemma-3-270m": "base"}
    assert len(registry["qwen2.5-coder-1.5b"].parts) == 22
    assert registry["gemma-3-270m"].chat_template is False
    assert registry["gemma-3-270m"].parts[0].file.endswith("part00")  # chunks count from 0 there


# What the weights are, as checked against the publishers' own files (shared/FACTS.md, "Provenance").
UPSTREAM = {
    "qwen2.5-coder-0.5b": ("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                           491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    "qwen2.5-coder-1.5b": ("Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                           1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
}


def test_registry_names_the_upstream_file_each_model_equals():
    registry = models.load_registry()
    for alias, (repo, file, size, sha256) in UPSTREAM.items():
        spec = registry[alias]
        assert (spec.upstream.repo, spec.upstream.file, spec.size, spec.sha256) == (repo, file, size, sha256)
        assert spec.upstream.file.endswith(f"-{spec.quantization.split()[0].lower()}.gguf"), spec.quantization
    assert registry["gemma-3-270m"].upstream is None  # matched to no published file: says so, claims nothing


def test_half_a_billion_model_is_labelled_as_qwens_q4_k_m_file():
    label = models.load_registry()["qwen2.5-coder-0.5b"].quantization
    assert label.startswith("Q4_K_M") and "Q5_0/Q8_0" in label and "896" in label and "AWQ" not in label


def facts_file():
    here = Path(__file__).resolve().parents[1]
    return next((p for p in (here.parent / "shared" / "FACTS.md", here.parents[1] / "shared" / "FACTS.md")
                 if p.is_file()), None)


@pytest.mark.skipif(facts_file() is None, reason="no shared/FACTS.md beside this clone (only the developers have it)")
def test_registry_agrees_with_the_verified_facts():
    facts = facts_file().read_text(encoding="utf-8")
    provenance = facts[facts.index("**Provenance of the weights.**"):][:800]
    for alias, spec in models.load_registry().items():
        row = next(line for line in facts.splitlines() if line.startswith(f"| `{alias}` |"))
        assert spec.sha256 in row and f"{spec.size:,}" in row, alias
        if spec.upstream:
            assert spec.upstream.file in provenance and spec.upstream.repo in provenance
            assert ("Q4_K_M" in row) == spec.quantization.startswith("Q4_K_M"), alias
    assert "Q5_0/Q8_0" in next(line for line in facts.splitlines() if line.startswith("| `qwen2.5-coder-0.5b` |"))


def test_unknown_alias_lists_the_known_ones():
    with pytest.raises(UnknownModelError, match="qwen2.5-coder-0.5b"):
        models.get_spec("phi-99")


def test_malformed_registry_is_named(tmp_path):
    bad = tmp_path / "models.json"
    bad.write_text('{"models": [{"alias": "x"}]}')
    with pytest.raises(DataFileError, match="lacks"):
        models.load_registry(bad)
    bad.write_text("{not json")
    with pytest.raises(DataFileError, match="git checkout"):
        models.load_registry(bad)


def test_assembles_verifies_and_stamps(fake_model):
    spec = fake_model()
    path = models.ensure_model("tiny", progress=False)
    assert path.read_bytes() == b"GGUF-part-one-part-two"
    assert models.verify_model("tiny")
    assert models._stamp_matches(spec)


def test_wrong_checksum_names_packages_and_leaves_nothing(fake_model):
    spec = fake_model(sha256="0" * 64)
    with pytest.raises(ModelFileError, match="force-reinstall --no-deps fakepart1==1.0 fakepart2==1.0"):
        models.ensure_model("tiny", progress=False)
    assert [p.name for p in spec.path.parent.iterdir()] == ["tiny.gguf.lock"]  # no partial file, no model, no stamp


def test_missing_part_file_names_its_package(fake_model):
    spec = fake_model()
    models.part_paths(spec)[1].unlink()
    with pytest.raises(ModelFileError, match="force-reinstall --no-deps fakepart2==1.0"):
        models.ensure_model("tiny", progress=False)


def test_uninstalled_part_package_says_pip_install(fake_model, monkeypatch):
    spec = fake_model()
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelFileError, match="pip install fakepart1==1.0 fakepart2==1.0"):
        models.part_paths(spec)


def test_corrupted_cached_file_is_rebuilt_from_parts(fake_model):
    fake_model()
    path = models.ensure_model("tiny", progress=False)
    path.write_bytes(b"GGUF-corrupted-on-disk!")
    assert not models.verify_model("tiny")
    assert models.ensure_model("tiny", progress=False).read_bytes() == b"GGUF-part-one-part-two"


def test_an_interrupted_assembly_leaves_no_partial_file(fake_model, monkeypatch):
    spec = fake_model()

    monkeypatch.setattr(models, "tqdm", InterruptedBar)
    with pytest.raises(KeyboardInterrupt):
        models.ensure_model("tiny", progress=False)
    assert [p.name for p in spec.path.parent.iterdir()] == ["tiny.gguf.lock"]


def test_partial_files_of_a_killed_assembly_are_swept(fake_model):
    spec = fake_model()
    spec.path.parent.mkdir(parents=True)
    leftover = spec.path.with_name("tiny.gguf.partial-999999-1")  # its writer is long gone
    leftover.write_bytes(b"half a model")
    assert models.ensure_model("tiny", progress=False).read_bytes() == b"GGUF-part-one-part-two"
    assert not leftover.exists()


def test_interrupting_a_conversion_stops_the_converter(tmp_path, monkeypatch):
    """The converter runs in a subprocess; Ctrl-C in the notebook must stop it, not orphan it."""
    monkeypatch.setenv("WORKSHOP_CACHE_DIR", str(tmp_path))
    marker = f"time.sleep(60.{os.getpid()})"
    standin = f"import time; print({convert.STAGE_MARK!r}, 'GGUF read', flush=True); {marker}"
    spawned = []
    real_popen = subprocess.Popen
    monkeypatch.setattr(convert.subprocess, "Popen", lambda cmd, **k: spawned.append(
        real_popen([sys.executable, "-c", standin], **k)) or spawned[-1])

    monkeypatch.setattr(convert, "tqdm", InterruptedBar)
    with pytest.raises(KeyboardInterrupt):
        convert.ensure_onnx_model("tiny")
    assert spawned and spawned[0].poll() is not None
    assert not convert.onnx_dir("tiny").exists()

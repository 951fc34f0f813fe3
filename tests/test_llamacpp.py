import pytest

from workshop_lib.runtime import llamacpp
from workshop_lib.errors import BuildError


def test_missing_toolchain_says_what_to_install(monkeypatch):
    monkeypatch.setattr(llamacpp.shutil, "which", lambda *a, **k: None)
    with pytest.raises(BuildError, match="cmake and a C\\+\\+ compiler not found") as err:
        llamacpp.find_toolchain()
    assert "build-essential" in str(err.value) and "Foundry Local" in str(err.value)


def test_build_is_keyed_by_version_and_options():
    assert llamacpp.LLAMA_CPP_PYTHON in llamacpp.build_dir().name
    assert "-DLLAMA_CURL=OFF" in llamacpp.cmake_options()


def test_nothing_is_built_in_an_empty_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKSHOP_CACHE_DIR", str(tmp_path))
    assert not llamacpp.is_built()

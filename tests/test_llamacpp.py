import io
import os
import subprocess
import sys
import tarfile

import psutil
import pytest

from workshop_lib.runtime import llamacpp, process
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


# A stand-in for the 7-minute cmake build: same ensure_built, same lock, a fake compile step.
BUILD = """
import sys, time
from workshop_lib.runtime import llamacpp

def fake_compile(cmake, src, root, progress):
    with open(root / "compiles.txt", "a") as log:
        log.write("compiled\\n")
    time.sleep(3)
    for target in llamacpp.TARGETS:
        exe = llamacpp.binary(target)
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("")

def fake_source(dest):
    dest.mkdir(parents=True)
    (dest / "CMakeLists.txt").write_text("")

llamacpp.find_toolchain = lambda: "cmake"
llamacpp._compile = fake_compile
llamacpp._fetch_source = fake_source
print("built:", llamacpp.ensure_built(progress=False), flush=True)
"""


def test_two_concurrent_builds_make_one_build(tmp_path):
    env = {**os.environ, "WORKSHOP_CACHE_DIR": str(tmp_path)}
    builders = [subprocess.Popen([sys.executable, "-c", BUILD], env=env, stdout=subprocess.PIPE, text=True)
                for _ in range(2)]
    outputs = [b.communicate(timeout=120)[0] for b in builders]
    assert [b.returncode for b in builders] == [0, 0]
    root = next((tmp_path / "llama.cpp").iterdir())
    assert (root / "compiles.txt").read_text() == "compiled\n"  # one build, not two
    assert all("built:" in out for out in outputs)
    assert any("Waiting for another llama-server build" in out for out in outputs)  # the waiter says why


def test_interrupting_the_build_stops_cmake_and_its_children(tmp_path, monkeypatch):
    marker = f"time.sleep(60.{os.getpid()})"  # names only this test's processes
    fake_cmake = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; {marker}']);"
                  f"print('[ 10%] Building', flush=True); {marker}")

    class InterruptedBar:  # Ctrl-C arrives while the progress bar moves
        n = 0

        def __init__(self, *args, **kwargs):
            pass

        def update(self, n):
            raise KeyboardInterrupt

        def close(self):
            pass

    monkeypatch.setattr(llamacpp, "tqdm", InterruptedBar)
    spawned = []
    real_popen = subprocess.Popen
    monkeypatch.setattr(llamacpp.subprocess, "Popen", lambda *a, **k: spawned.append(real_popen(*a, **k)) or spawned[-1])
    with pytest.raises(KeyboardInterrupt):
        llamacpp._run([sys.executable, "-c", fake_cmake], tmp_path / "build.log", progress=True)
    assert spawned[0].poll() is not None
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])
                 and p.status() != psutil.STATUS_ZOMBIE]
    assert leftovers == []


def make_tar(path, entries):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def file_entry(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


@pytest.mark.parametrize("has_filter", [True, False])  # False: Python 3.11.0 to 3.11.3
def test_unpacking_accepts_files_and_refuses_escapes(tmp_path, monkeypatch, has_filter):
    if has_filter and not llamacpp.HAS_DATA_FILTER:
        pytest.skip("this Python's tarfile has no extraction filters (3.11.0 to 3.11.3)")
    # only safe_extract's own check is turned off: tarfile itself stays whole (3.14's extractall()
    # falls back to tarfile.data_filter by default, so deleting that name broke tarfile, not our code)
    monkeypatch.setattr(llamacpp, "HAS_DATA_FILTER", has_filter)
    good = tmp_path / "good.tar.gz"
    make_tar(good, [file_entry("pkg/vendor/llama.cpp/CMakeLists.txt")])
    with tarfile.open(good) as tar:
        llamacpp.safe_extract(tar, tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "vendor" / "llama.cpp" / "CMakeLists.txt").read_bytes() == b"x"
    link = tarfile.TarInfo("pkg/escape")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    for bad_entry in (file_entry("../evil.txt"), (link, None)):
        bad = tmp_path / "bad.tar.gz"
        make_tar(bad, [bad_entry])
        with tarfile.open(bad) as tar, pytest.raises((BuildError, tarfile.TarError)):
            llamacpp.safe_extract(tar, tmp_path / "out2")
    assert not (tmp_path / "evil.txt").exists()


def test_a_tampered_sdist_is_refused(tmp_path):
    fake = tmp_path / "llama_cpp_python-0.3.36.tar.gz"
    fake.write_bytes(b"not the pinned file")
    with pytest.raises(BuildError, match="expected " + llamacpp.SDIST_SHA256):
        llamacpp.check_sdist(fake)


def test_source_is_shared_and_a_finished_tree_is_returned_without_waiting(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_CACHE_DIR", str(tmp_path))
    src = llamacpp.build_dir() / "src"
    src.mkdir(parents=True)
    (src / "CMakeLists.txt").write_text("")
    with process.exclusive(llamacpp.build_dir() / "build.lock", "test"):  # a build in progress elsewhere
        assert llamacpp.ensure_source() == src

"""Build llama.cpp's own ``llama-server`` (and ``llama-bench``) from source, once per version.

Taught in 00_setup_and_first_chat. The ``llama-cpp-python`` source distribution on PyPI carries the
full llama.cpp tree under ``vendor/llama.cpp``; building its server needs only a C++ compiler and
cmake. The build lands in the per-user cache and is reused until LLAMA_CPP_PYTHON changes.
"""
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tqdm.auto import tqdm

from . import process
from ..config import cache_dir
from ..errors import BuildError

LLAMA_CPP_PYTHON = "0.3.36"  # the sdist whose vendored llama.cpp we build
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"  # its PyPI file
TARGETS = ("llama-server", "llama-bench")
CMAKE_OPTIONS = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
                 "-DLLAMA_BUILD_EXAMPLES=OFF"]
# -march=native, minus AMX: a VM here advertised AMX and crashed with SIGILL on its first AMX
# instruction (laptop CPUs have no AMX anyway). GCC and Clang let -mno-* win over -march=native.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def cmake_options() -> list:
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    if x86 and sys.platform != "win32":
        return CMAKE_OPTIONS + [f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}"]
    return CMAKE_OPTIONS


def build_dir() -> Path:
    """One build per llama.cpp version, options and CPU (a native build may not run on another CPU).
    Binaries keep absolute paths to their libraries, so the build stays where it was made."""
    key = hashlib.sha256(" ".join(cmake_options() + [_cpu_signature()]).encode()).hexdigest()[:8]
    return cache_dir() / "llama.cpp" / f"{LLAMA_CPP_PYTHON}-{sys.platform}-{platform.machine()}-{key}"


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next((line for line in info if line.startswith(("flags", "Features"))), "")
    except OSError:
        return platform.processor()


def binary(name: str = "llama-server") -> Path:
    exe = name + (".exe" if sys.platform == "win32" else "")
    for sub in ("bin", "bin/Release"):  # MSVC puts binaries one level deeper
        if (build_dir() / "build" / sub / exe).exists():
            return build_dir() / "build" / sub / exe
    return build_dir() / "build" / "bin" / exe


def is_built() -> bool:
    """True once a build finished: the READY marker is written last."""
    return (build_dir() / "READY").exists() and all(binary(t).exists() for t in TARGETS)


def ensure_built(progress: bool = True) -> Path:
    """Path to ``llama-server``, building it first if needed (about 7 minutes on 2 cores).

    One build at a time per folder: ``setup``, ``build`` and a notebook may all ask at once; the
    others wait (and say so), then find the finished build."""
    if is_built():
        return binary()
    cmake = find_toolchain()
    root = build_dir()
    with _build_lock(root):
        if not is_built():
            _compile(cmake, _source_locked(root), root, progress)
            (root / "READY").write_text(LLAMA_CPP_PYTHON)
    return binary()


def _build_lock(root: Path):
    root.mkdir(parents=True, exist_ok=True)
    return process.exclusive(root / "build.lock", "another llama-server build (setup, build or a notebook) to finish")


def _compile(cmake: str, src: Path, root: Path, progress: bool) -> None:
    log = root / "build.log"
    jobs = str(os.cpu_count() or 2)
    _run([cmake, "-S", str(src), "-B", str(root / "build"), *cmake_options()], log, False)
    _run([cmake, "--build", str(root / "build"), "--config", "Release", "-j", jobs,
          "--target", *TARGETS], log, progress)


def ensure_source() -> Path:
    """The unpacked ``vendor/llama.cpp`` tree of the pinned sdist (lesson 04 reads its Markdown docs);
    downloaded and unpacked first if no build did it yet."""
    root = build_dir()
    if (root / "src" / "CMakeLists.txt").exists():  # it appears whole, by one rename
        return root / "src"
    with _build_lock(root):
        return _source_locked(root)


def _source_locked(root: Path) -> Path:
    """``root/src``, fetched if missing; call it holding the build lock, so no build is using it."""
    src = root / "src"
    process.sweep_partials(root)
    if not (src / "CMakeLists.txt").exists():
        if src.exists():  # an incomplete tree from an older version of this code
            shutil.rmtree(src)
        _fetch_source(src)
    return src


def find_toolchain(os_name: str = None) -> str:
    """cmake from PATH or from this venv (the ``cmake`` PyPI package), plus a C++ compiler: on PATH,
    or on Windows a Visual Studio installation, which CMake finds without PATH. ``os_name`` (default
    ``sys.platform``) lets a test check the Windows decision on any OS, with this OS's ``shutil.which``."""
    windows = (os_name or sys.platform) == "win32"
    venv_bin = Path(sys.executable).parent
    cmake = shutil.which("cmake") or shutil.which("cmake", path=str(venv_bin))
    compiler = any(shutil.which(c) for c in ("c++", "g++", "clang++", "cl")) or (windows and visual_studio_cpp())
    if cmake and compiler:
        return cmake
    where = " (looked on PATH, and for Visual Studio with vswhere as CMake does)" if windows else ""
    missing = " and ".join(m for m, ok in (("cmake", cmake), ("a C++ compiler" + where, compiler)) if not ok)
    fix = VS_BUILD_TOOLS_FIX if windows else (
        "Debian/Ubuntu: sudo apt-get install build-essential cmake; Fedora: sudo dnf install "
        "gcc-c++ cmake; macOS: xcode-select --install. Or skip the build entirely by running "
        "Foundry Local (see README, 'Using Foundry Local').")
    raise BuildError(f"Cannot build llama-server: {missing} not found.", fix)


VS_BUILD_TOOLS_FIX = (
    "Install the Visual Studio Build Tools with the C++ workload: `winget install Microsoft.VisualStudio."
    "2022.BuildTools --override \"--add Microsoft.VisualStudio.Workload.VCTools --includeRecommended "
    "--passive --wait\"` (and cmake: `winget install Kitware.CMake`), then open a new terminal. Or skip the "
    "build: use Foundry Local (README, 'Using Foundry Local').")


def visual_studio_cpp():
    """Windows: the Visual Studio installation with the C++ tools for this CPU, found as CMake's
    Visual Studio generator finds it (the installer's ``vswhere``), else None. The compiler need
    not be on PATH: CMake locates it through the installation."""
    vswhere = Path(os.environ.get("ProgramFiles(x86)", r"C:\Program Files (x86)"),
                   "Microsoft Visual Studio", "Installer", "vswhere.exe")
    arm = platform.machine().lower() in ("arm64", "aarch64")
    component = "Microsoft.VisualStudio.Component.VC.Tools." + ("ARM64" if arm else "x86.x64")
    if not vswhere.exists():
        return None
    try:
        out = subprocess.run([str(vswhere), "-latest", "-products", "*", "-requires", component,
                              "-property", "installationPath"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None



def _fetch_source(dest: Path) -> None:
    """Download the llama-cpp-python sdist with pip, check its SHA-256, and unpack its vendored
    llama.cpp into ``dest`` through a staging folder next to it (one rename: never half a tree)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python",
               "--quiet", "-d", tmp, f"llama-cpp-python=={LLAMA_CPP_PYTHON}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        sdists = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if done.returncode != 0 or not sdists:
            raise BuildError(f"Could not download llama-cpp-python=={LLAMA_CPP_PYTHON}: "
                             f"{done.stderr.strip()[-500:]}",
                             "Check that pip can reach PyPI (proxy settings), then run again.")
        check_sdist(sdists[0])
        staging = process.partial_path(dest)
        try:
            with tarfile.open(sdists[0]) as tar:
                safe_extract(tar, staging)
            os.replace(next(staging.glob("*/vendor/llama.cpp")), dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def check_sdist(path: Path) -> None:
    """The sdist must be the very file we pinned: we compile and run what it carries."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise BuildError(f"{Path(path).name} has SHA-256 {digest}, expected {SDIST_SHA256}.",
                         "Your package index served a different file. Check the pip index and proxy "
                         "settings (pip config list), then run again.")


HAS_DATA_FILTER = hasattr(tarfile, "data_filter")  # Python 3.12 and 3.11.4+ (a test turns it off)


def safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract regular files and folders only, each inside ``dest``. Python 3.12 and 3.11.4+ do that
    check themselves (``filter="data"``); 3.11.0 to 3.11.3 lack the argument, so check by hand."""
    if HAS_DATA_FILTER:
        tar.extractall(dest, filter="data")
        return
    root = Path(dest).resolve()
    members = tar.getmembers()
    for member in members:
        target = (root / member.name).resolve()
        if not (member.isfile() or member.isdir()) or not target.is_relative_to(root):
            raise BuildError(f"The sdist holds an unsafe entry {member.name!r} ({member.type!r}).",
                             "Do not build from it; report the file to the workshop maintainers.")
    tar.extractall(dest, members=members)


def _run(cmd: list, log: Path, progress: bool) -> None:
    """Run a cmake step into ``log``; with ``progress``, turn its ``[ 42%]`` lines into a bar."""
    bar = tqdm(total=100, desc="build llama-server", unit="%", disable=not progress)
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        try:
            with process.reaped(proc):  # Ctrl-C stops cmake and its compilers too; the next run resumes
                for line in proc.stdout:
                    out.write(line)
                    if (m := re.match(r"\[\s*(\d+)%\]", line)):
                        bar.update(int(m.group(1)) - bar.n)
                proc.wait()
        finally:
            bar.close()
    if proc.returncode != 0:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-15:])
        raise BuildError(f"Building llama-server failed (exit {proc.returncode}). Last lines of "
                         f"{log}:\n{tail}", f"Read {log}; a missing compiler or cmake is the usual "
                         "cause. Then run `python -m workshop_lib build` again (it resumes).")


def llama_bench(model_path, threads: int, n_prompt: int = 128, n_gen: int = 64, repetitions: int = 3,
                depth: int = 0) -> dict:
    """llama.cpp's own benchmark, no HTTP in the way: prompt and generation tokens/s (taught in 03).
    ``depth`` tokens of context are computed before each test (``-d``), as deep in a long conversation."""
    cmd = [str(binary("llama-bench")), "-m", str(model_path), "-t", str(threads), "-p", str(n_prompt),
           "-n", str(n_gen), "-r", str(repetitions), "-d", str(depth), "-o", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise BuildError(f"llama-bench failed: {done.stderr.strip()[-400:]}", "Run `python -m workshop_lib "
                         "doctor`; rebuild with `python -m workshop_lib build` if the binary is missing.")
    tests = json.loads(done.stdout)
    pp = next((t["avg_ts"] for t in tests if t["n_prompt"] and not t["n_gen"]), None)  # None if n_prompt=0
    tg = next(t for t in tests if t["n_gen"] and not t["n_prompt"])
    return {"pp_tps": pp, "tg_tps": tg["avg_ts"], "tg_std": tg["stddev_ts"], "threads": threads,
            "depth": tg.get("n_depth", 0)}  # as llama-bench reports it: the depth it really ran at

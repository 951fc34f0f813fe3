#!/usr/bin/env python3
"""Set up and run Local LLM Lab. Needs only Python 3.11+; everything else goes into ./.venv.

    python lab.py start   set everything up, start the model server, open JupyterLab on notebooks/
    python lab.py test    set everything up, run the whole test suite (every notebook included)
    python lab.py stop    stop the embedded model server

--no-embedded: use a Foundry Local service (or WORKSHOP_ENDPOINT) instead of the embedded server; skips
the model packages, the llama.cpp build and the model-conversion packages. It is implied when WORKSHOP_ENDPOINT or
FOUNDRY_LOCAL_ENDPOINT is set. Every step is skipped when already done, so reruns are quick.
"""
import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
ENDPOINT_VARIABLES = ("WORKSHOP_ENDPOINT", "FOUNDRY_LOCAL_ENDPOINT")


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*cmd, check=True, **kwargs) -> int:
    print("+", " ".join(map(str, cmd)), flush=True)
    code = subprocess.run([str(c) for c in cmd], cwd=ROOT, **kwargs).returncode
    if check and code != 0:
        sys.exit(f"lab.py: step failed (exit {code}): {' '.join(map(str, cmd))}")
    return code


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"lab.py: Python 3.11 or newer is needed, this is {sys.version.split()[0]}. "
                 "Install a newer Python (python.org, winget, brew, apt) and run lab.py with it.")
    if not venv_python().exists():
        run(sys.executable, "-m", "venv", VENV)


def ensure_requirements(embedded: bool) -> None:
    """pip install only when the requirement files changed since the last install."""
    files = ["requirements.txt"] + (["requirements-embedded.txt", "requirements-convert.txt"] if embedded else [])
    digest = hashlib.sha256(sys.version.encode())
    for name in files + ["pyproject.toml"]:
        digest.update((ROOT / name).read_bytes())
    stamp = VENV / f".installed-{'embedded' if embedded else 'service'}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    run(venv_python(), "-m", "pip", "install", "--disable-pip-version-check",
        *[arg for name in files for arg in ("-r", name)])
    stamp.write_text(digest.hexdigest())


def setup(embedded: bool) -> None:
    ensure_venv()
    ensure_requirements(embedded)
    if (ROOT / ".git").exists():  # strip notebook outputs on every commit in this clone
        run(venv_python(), "-m", "nbstripout", "--install")
    if embedded:
        run(venv_python(), "-m", "workshop_lib", "setup")


def serve_while(embedded: bool, *cmd, env=None) -> int:
    """Run ``cmd`` with the embedded server up; stop the server afterwards if we started it."""
    started = embedded and run(venv_python(), "-m", "workshop_lib", "status", check=False,
                               stdout=subprocess.DEVNULL) != 0
    if embedded:
        run(venv_python(), "-m", "workshop_lib", "serve")
    try:
        return run(*cmd, check=False, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        if started:
            run(venv_python(), "-m", "workshop_lib", "stop", check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=["start", "test", "stop"])
    parser.add_argument("--no-embedded", action="store_true", help="use a Foundry Local service")
    args, pytest_args = parser.parse_known_args()  # the rest goes to pytest, e.g. -k doctor
    embedded = not (args.no_embedded or any(os.environ.get(v) for v in ENDPOINT_VARIABLES))
    if args.command == "stop":
        return run(venv_python(), "-m", "workshop_lib", "stop", check=False)
    setup(embedded)
    if args.command == "start":
        as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # containers
        return serve_while(embedded, venv_python(), "-m", "jupyter", "lab", "--ip=127.0.0.1",
                           f"--notebook-dir={ROOT / 'notebooks'}", *as_root)
    env = {**os.environ, "WORKSHOP_SMOKE": os.environ.get("WORKSHOP_SMOKE", "1")}
    return serve_while(embedded, venv_python(), "-m", "pytest", "tests", "notebooks", "--nbmake",
                       "--nbmake-timeout=900", "-v", *pytest_args, env=env)


if __name__ == "__main__":
    sys.exit(main())

"""A second, different real model server: llama-cpp-python's own OpenAI-compatible server.

Used by CI (and by anyone who wants to see a lesson on a server without llama-server's extras):
every notebook runs again against it. Like a Foundry Local service, it sends no ``usage`` in
streams, no ``timings`` and has no llama-server ``/tokenize``, and it answers one request at a
time; unlike one, it keeps one model loaded at a time (switching alias reloads it);
it serves our two chat models under the ids Foundry Local gives the same models, so
``connect()``'s Foundry defaults resolve on it. Taught where lessons skip what a server lacks
(00_setup_and_first_chat, 03_benchmarking).

It installs in seconds without compiling: llama-cpp-python is installed without building its
bundled llama.cpp and loads the library our llama-server build already made (same version).

    python -m workshop_lib.runtime.compat_server start|stop|status [--print-env]
"""
import argparse
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import llamacpp, models, process, server
from ..config import cache_dir, write_atomic
from ..errors import PortInUseError, WorkshopError
from ..extras import pip_options

NAME = "compat-server"  # its record: cache_dir()/procs/compat-server.json (process.py)
HOST = server.HOST  # 127.0.0.1 only
REQUIREMENT = f"llama-cpp-python[server]=={llamacpp.LLAMA_CPP_PYTHON}"
# The server and every package it needs, pinned by hash; its first line holds the pip options.
REQUIREMENTS = Path(__file__).resolve().with_name("compat-server-requirements.txt")
SERVER_MODULES = ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")
# Our GGUF alias -> the id Foundry Local's catalog gives the same model (CPU variant).
FOUNDRY_IDS = {"qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b-instruct-generic-cpu:4",
               "qwen2.5-coder-1.5b": "qwen2.5-coder-1.5b-instruct-generic-cpu:4"}
CONTEXT = 8192  # tokens per model: room for lesson 04's retrieved passages


@dataclass
class CompatServer:
    pid: int
    port: int
    models: list
    log: str

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


def home() -> Path:
    path = cache_dir() / "compat_server"
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_installed() -> bool:
    """True if llama-cpp-python at our version and its server's packages are installed (looked up,
    not imported: importing llama_cpp loads the native library, found only with LLAMA_CPP_LIB_PATH)."""
    importlib.invalidate_caches()  # another process (the CLI, lab.py) may have installed it since we looked
    try:
        if importlib.metadata.version("llama-cpp-python") != llamacpp.LLAMA_CPP_PYTHON:
            return False
        package = importlib.util.find_spec("llama_cpp")
    except importlib.metadata.PackageNotFoundError:
        return False
    server_app = package and Path(package.origin).parent / "server" / "app.py"
    return bool(server_app and server_app.exists()) and all(importlib.util.find_spec(m) for m in SERVER_MODULES)


def ensure_installed() -> None:
    """Install ``llama-cpp-python[server]`` into this Python's environment if missing, without
    compiling llama.cpp (``-DLLAMA_BUILD=OFF``): about 20 seconds."""
    if is_installed():
        return
    with process.exclusive(home() / "install.lock", "another install of llama-cpp-python's server"):
        if is_installed():
            return
        print(f"Installing {REQUIREMENT} (no compilation, about 20 s)...", file=sys.stderr)
        cmd = install_command()
        out = subprocess.run(cmd, env={**os.environ, "CMAKE_ARGS": "-DLLAMA_BUILD=OFF"}, capture_output=True,
                             text=True)
        importlib.invalidate_caches()
    if out.returncode != 0 or not is_installed():
        tail = "\n".join((out.stdout + out.stderr).splitlines()[-15:])
        raise WorkshopError(f"Installing {REQUIREMENT} failed:\n{tail}",
                            f"Run `{' '.join(cmd)}` with CMAKE_ARGS=-DLLAMA_BUILD=OFF yourself and read its output.")


def install_command(requirements: Path = REQUIREMENTS) -> list:
    """pip's command for the hash-pinned server packages: ``--require-hashes`` (from the file's first line)
    makes pip refuse a package that is not listed with its hash, or whose download does not match."""
    return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            *pip_options(requirements), "-r", str(requirements)]


def config(port: int, progress: bool = True) -> dict:
    """The server's settings: our chat models under their Foundry ids, this installation's API key,
    and requests queued, not interrupted (its default stops a stream when another request comes)."""
    threads = server.threads()
    served = [{"model": str(models.ensure_model(alias, progress)), "model_alias": foundry_id, "n_ctx": CONTEXT,
               "n_threads": threads, "n_threads_batch": threads}
              for alias, foundry_id in FOUNDRY_IDS.items()]
    return {"host": HOST, "port": port, "api_key": server.api_key(), "interrupt_requests": False, "models": served}


def start(port=None, progress: bool = True, timeout: float = 180) -> CompatServer:
    """Start the server (or return the running one): installs it and builds llama.cpp if needed."""
    with process.exclusive(home() / "start.lock", "another start of the compat server"):
        if found := running():
            return found
        ensure_installed()
        library_dir = llamacpp.ensure_built(progress).parent  # libllama lives next to llama-server
        try:
            port = server.choose_port(port)
        except PortInUseError as exc:
            raise PortInUseError(exc.problem, "Pass another --port, or none to let it pick a free one.") from None
        settings = home() / "config.json"  # holds the API key: owner-only
        write_atomic(settings, json.dumps(config(port, progress), indent=1), mode=0o600)
        record = process.start(NAME, [sys.executable, "-m", "llama_cpp.server", "--config_file", settings],
                               port=port, health_url=f"http://{HOST}:{port}/openapi.json",
                               log=home() / "server.log", env={**os.environ, "LLAMA_CPP_LIB_PATH": str(library_dir)},
                               ready_timeout=timeout, extra={"models": list(FOUNDRY_IDS.values())})
        return _info(record)


def running():
    """The running compat server (identity checked by process.py), else None."""
    record = process.running(NAME)
    return _info(record) if record else None


def _info(record: process.Record) -> CompatServer:
    return CompatServer(record.pid, record.port, record.extra.get("models", []), record.log)


def stop() -> bool:
    """Stop the compat server if it runs; True if it did."""
    return process.stop(NAME)


def environment(found: CompatServer) -> dict:
    """The variables that point notebooks at this server. Its API key is not among them:
    ``connect()`` recognises our own server and sends the key itself."""
    return {"WORKSHOP_ENDPOINT": found.base_url}


def main(argv=None) -> int:
    """``start`` (``--print-env``: only ``NAME=value`` lines on stdout), ``stop``, ``status``."""
    parser = argparse.ArgumentParser(prog="python -m workshop_lib.runtime.compat_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--print-env", action="store_true", help="print NAME=value lines for the notebooks")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "stop":
            print("stopped" if stop() else "not running")
            return 0
        found = start(args.port) if args.command == "start" else running()
    except WorkshopError as exc:
        print(exc, file=sys.stderr)
        return 1
    if found is None:
        print("not running")
        return 1
    lines = [f"{k}={v}" for k, v in environment(found).items()]
    if not args.print_env:
        print(f"running (pid {found.pid}) at {found.base_url}, serving {', '.join(found.models)}; log {found.log}")
        print("Point the notebooks at it with:")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start, find and stop the embedded llama-server (taught in 00_setup_and_first_chat).

One server per user serves every registered model from one base URL ("router mode": llama-server
lists each ``NAME.gguf`` of a folder as model ``NAME`` and loads it on first use). It outlives the
notebook kernel that started it, so the next notebook finds it again through a small state file.
"""
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from . import llamacpp, models
from ..config import cache_dir, setting, write_atomic
from ..errors import EndpointError, PortInUseError

HOST = "127.0.0.1"  # never reachable from the network


@dataclass
class ServerInfo:
    pid: int
    port: int
    log: str
    models: list
    started_at: float

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


def server_home(home=None) -> Path:
    """Folder with the state file, the log and the model links; tests pass their own."""
    path = Path(home) if home else cache_dir() / "server"
    path.mkdir(parents=True, exist_ok=True)
    return path


def running_server(home=None):
    """The server recorded in the state file if it still answers; a stale record is removed."""
    state, info = _read_state(home)
    if info is None:
        return None
    if _answers(info):
        return info
    _kill_tree(info.pid)  # a hung server would hold its port and memory
    state.unlink(missing_ok=True)
    return None


def _read_state(home):
    """``(state_file, ServerInfo or None)``; a missing or unreadable file counts as no server."""
    state = server_home(home) / "server.json"
    try:
        return state, ServerInfo(**json.loads(state.read_text()))
    except (OSError, ValueError, TypeError):
        return state, None


def start_server(port=None, home=None, aliases=None, progress=True, timeout=180) -> ServerInfo:
    """Reuse the running server, or build/assemble what is missing and start one on a free port."""
    home = server_home(home)
    with _exclusive(home / "server.lock"):
        if info := running_server(home):
            return info
        exe = llamacpp.ensure_built(progress)
        model_dir = _link_models(home / "models", aliases or list(models.load_registry()), progress)
        port = choose_port(port or setting("port"))
        log = home / "llama-server.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(server_command(exe, model_dir, port), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **_detached())
        info = ServerInfo(proc.pid, port, str(log), sorted(p.stem for p in model_dir.glob("*.gguf")),
                          time.time())
        _wait_until_ready(info, proc, timeout)
        write_atomic(home / "server.json", json.dumps(asdict(info)))
        return info


def server_command(exe: Path, model_dir: Path, port: int) -> list:
    """The llama-server command line; threads, slots and context come from the machine or settings."""
    parallel = int(setting("parallel", 4))  # slots: concurrent requests are batched together
    return [str(exe), "--models-dir", str(model_dir), "--models-max", str(setting("models_max", 3)),
            "--host", HOST, "--port", str(port), "-t", str(threads()),
            "-np", str(parallel), "-c", str(int(setting("context_per_slot", 4096)) * parallel),
            "--metrics"]


def threads() -> int:
    """``WORKSHOP_THREADS``, else the physical cores: hyper-threads add little to token generation
    and slow the rest of the laptop."""
    return int(setting("threads", psutil.cpu_count(logical=False) or os.cpu_count() or 2))


def stop_server(home=None) -> bool:
    """Stop the recorded server and its per-model children; True if one was running."""
    state, info = _read_state(home)
    if info is None:
        return False
    stopped = _kill_tree(info.pid)
    state.unlink(missing_ok=True)
    return stopped


def model_rss_mb(model: str, home=None):
    """Resident memory of the process serving ``model`` on the embedded server, in MB; else None.

    In router mode each model runs in its own child process, started with ``--alias MODEL``."""
    info = running_server(home)
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(info.pid).children(recursive=True) if info else []:
            if model in child.cmdline():
                return child.memory_info().rss / 1e6
    return None


def reload_model(base_url: str, model: str, timeout: float = 180) -> float:
    """Unload ``model`` from the router, load it again, and return the seconds the load took."""
    root = base_url.removesuffix("/v1")
    with contextlib.suppress(OSError):  # not loaded yet: nothing to unload
        post_json(f"{root}/models/unload", {"model": model})
    _wait_for_status(root, model, lambda status: status != "loaded", timeout)
    start = time.perf_counter()
    post_json(f"{root}/models/load", {"model": model})
    _wait_for_status(root, model, lambda status: status == "loaded", timeout)
    return time.perf_counter() - start


def _wait_for_status(root: str, model: str, done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{root}/v1/models", timeout=10) as resp:
            entries = {m["id"]: m.get("status", {}).get("value") for m in json.load(resp)["data"]}
        if done(entries.get(model)):
            return
        time.sleep(0.05)
    raise EndpointError(f"Model {model} did not change state within {timeout:.0f} s.",
                        "Read the server log (`python -m workshop_lib status` shows where).")


def post_json(url: str, body: dict) -> dict:
    """POST ``body`` as JSON to a llama-server endpoint and return its JSON answer."""
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        return json.load(resp)


def choose_port(port=None) -> int:
    """The requested port if free on 127.0.0.1, else a clear error; no request: any free port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, int(port or 0)))
        except OSError:
            raise PortInUseError(f"Port {port} on {HOST} is already in use{_port_owner(int(port))}.",
                                 "Stop that program, set WORKSHOP_PORT to another port, or unset "
                                 "WORKSHOP_PORT to let the workshop pick a free one.") from None
        return s.getsockname()[1]


def _port_owner(port: int) -> str:
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections("tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f" by {psutil.Process(conn.pid).name()} (pid {conn.pid})"
    return ""


def _link_models(model_dir: Path, aliases: list, progress: bool) -> Path:
    """Give the router a folder of ``ALIAS.gguf`` entries pointing at the verified cached files."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for stale in model_dir.glob("*.gguf"):
        stale.unlink()
    for alias in aliases:
        source, link = models.ensure_model(alias, progress), model_dir / f"{alias}.gguf"
        try:
            link.symlink_to(source)
        except OSError:  # Windows without developer mode: a hard link costs no space either
            os.link(source, link)
    return model_dir


def _wait_until_ready(info: ServerInfo, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EndpointError(f"llama-server exited with code {proc.returncode} while starting."
                                f"\n{_log_tail(info.log)}", f"Read {info.log}; "
                                "`python -m workshop_lib doctor` checks the usual causes.")
        if _answers(info):
            return
        time.sleep(0.25)
    _kill_tree(proc.pid)
    raise EndpointError(f"llama-server did not answer within {timeout:.0f} s.\n{_log_tail(info.log)}",
                        f"Read {info.log}; a machine under heavy load may need a second try.")


def _answers(info: ServerInfo) -> bool:
    """True if the process lives and its /health says ok."""
    if not psutil.pid_exists(info.pid):
        return False
    try:
        with urllib.request.urlopen(f"http://{HOST}:{info.port}/health", timeout=3) as resp:
            return resp.status == 200
    except OSError:
        return False


def _kill_tree(pid: int) -> bool:
    try:
        parent = psutil.Process(pid)
        family = parent.children(recursive=True) + [parent]
    except psutil.Error:
        return False
    for p in family:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(family, timeout=10)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    return True


def _log_tail(log, lines: int = 12) -> str:
    with contextlib.suppress(OSError):
        return "".join(Path(log).read_text(errors="replace").splitlines(True)[-lines:])
    return ""


def _detached() -> dict:
    """Popen options that let the server outlive the kernel or terminal that started it."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS}
    return {"start_new_session": True}


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """Two notebooks connecting at once must not start two servers."""
    with open(lock_path, "a+") as handle:
        if sys.platform == "win32":
            import msvcrt
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
        else:
            import fcntl
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if sys.platform == "win32":
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)

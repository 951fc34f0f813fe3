"""Start, find and stop the embedded llama-server (taught in 00_setup_and_first_chat).

One server per user serves every registered model from one base URL ("router mode": llama-server
lists each ``NAME.gguf`` of a folder as model ``NAME`` and loads it on first use). It outlives the
notebook kernel that started it, so the next notebook finds it again through a small state file
that records who it is (``process.py``): a server that is merely busy is never stopped.

It listens on 127.0.0.1 only and wants this installation's API key (``api_key()``) on every request
but ``/health``; web pages may read its answers only when they come from this machine.
"""
import contextlib
import json
import os
import secrets
import socket
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import clients, llamacpp, models, process
from ..config import cache_dir, int_setting, write_atomic
from ..errors import EndpointError, PortInUseError, WorkshopError

HOST = "127.0.0.1"  # never reachable from the network
NAME = "llama-server"  # its record in the server folder: llama-server.json (process.py)
HELPER_PREFIX = "llama-server-helper-"  # records of extra servers a lesson starts, in cache_dir()/procs


@dataclass
class ServerInfo:
    pid: int
    port: int
    log: str
    models: list
    started_at: float
    api_key: str = ""  # what clients send as ``Authorization: Bearer``; "" for an old server started without one

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


def server_home(home=None) -> Path:
    """Folder with the state file, the log and the model links; tests pass their own."""
    path = Path(home) if home else cache_dir() / "server"
    path.mkdir(parents=True, exist_ok=True)
    return path


def api_key() -> str:
    """This installation's key for the embedded server, made once with ``secrets`` and kept in the
    cache (mode 600, never in the repository). Without it, any program on this machine, or a web
    page through the browser, could use the server and load or unload its models."""
    path = server_home() / "api_key"
    if key := _read_key(path):
        return key
    with process.exclusive(path.with_name("api_key.lock"), "another process creating the server's API key"):
        if not (key := _read_key(path)):
            key = secrets.token_urlsafe(32)
            write_atomic(path, key, mode=0o600)
    return key


def _read_key(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(encoding="utf-8").strip()
    return ""


def running_server(home=None, name=NAME, records=None):
    """The recorded server if its process is still the one we started, busy or not; else None.
    ``name`` and ``records`` as in ``start_server``.

    Nothing is killed here: a server that is slow to answer is still ours and still working."""
    home = server_home(home)
    record = process.running(name, records or home) or (_legacy_record(home) if name == NAME else None)
    return _info(record) if record else None


def _info(record: process.Record) -> ServerInfo:
    key = api_key() if record.extra.get("keyed") else ""
    return ServerInfo(record.pid, record.port, record.log, record.extra.get("models", []), record.started_at, key)


def _legacy_record(home: Path):
    """A server started by an earlier version of this workshop, which recorded only its PID in
    ``server.json``: ours if that PID runs our llama-server binary on the recorded port."""
    legacy = home / "server.json"
    if not legacy.exists():
        return None
    try:
        old = json.loads(legacy.read_text())
        proc = psutil.Process(old["pid"])
        ours = (proc.create_time() <= old["started_at"] and str(old["port"]) in proc.cmdline()
                and proc.status() != psutil.STATUS_ZOMBIE and os.path.samefile(proc.exe(), llamacpp.binary()))
    except (ValueError, KeyError, TypeError, psutil.NoSuchProcess):
        ours = False  # unreadable, or the process is gone
    except (OSError, psutil.Error):
        return None  # cannot tell (no access, build moved): keep the record, kill nothing
    if not ours:
        legacy.unlink(missing_ok=True)  # a dead or foreign PID: forget it, never kill it
        return None
    return process.Record(NAME, old["pid"], proc.create_time(), proc.exe(), old["port"],
                          f"http://{HOST}:{old['port']}", old["log"], old["started_at"],
                          {"models": old["models"], "legacy": True})


def start_server(port=None, home=None, aliases=None, progress=True, timeout=180, name=NAME,
                 records=None) -> ServerInfo:
    """Reuse the running server, or build/assemble what is missing and start one on a free port.

    Its process record is ``name`` in ``records`` (default: ``home``); a helper server (lesson 05's
    throwaway) is named ``HELPER_PREFIX...`` in the shared procs/ folder, where ``stop_helpers`` finds it."""
    home = server_home(home)
    with process.exclusive(home / "server.lock", "another notebook or command starting the embedded server"):
        if info := running_server(home, name, records):
            return info
        exe = llamacpp.ensure_built(progress)
        model_dir = _link_models(home / "models", aliases or list(models.load_registry()), progress)
        port = choose_port(port or int_setting("port", None, minimum=1, example=8080))
        served = sorted(p.stem for p in model_dir.glob("*.gguf"))
        try:  # the key travels in the environment, not the command line that `ps` shows everyone
            record = process.start(name, server_command(exe, model_dir, port), port=port,
                                   health_url=f"http://{HOST}:{port}/health", log=home / "llama-server.log",
                                   env={**os.environ, "LLAMA_API_KEY": api_key()}, ready_timeout=timeout,
                                   home=records or home, extra={"models": served, "keyed": True})
        except WorkshopError as exc:  # the endpoint error connect() and the doctor know how to explain
            raise EndpointError(exc.problem, exc.fix) from None
        return _info(record)


def server_command(exe: Path, model_dir: Path, port: int) -> list:
    """The llama-server command line; threads, slots and context come from the machine or settings.

    Cross-origin: by default llama-server answers any web page's origin (``*``, credentials allowed).
    ``--cors-origins localhost`` lets only pages served from this machine read its answers (lesson 07's
    page, the built-in chat page); the API key keeps every other caller out."""
    parallel = int_setting("parallel", 4, minimum=1)  # slots: concurrent requests are batched together
    context = int_setting("context_per_slot", 4096, minimum=256) * parallel
    return [str(exe), "--models-dir", str(model_dir), "--models-max", str(int_setting("models_max", 3, minimum=1)),
            "--host", HOST, "--port", str(port), "-t", str(threads()), "-np", str(parallel), "-c", str(context),
            "--metrics", "--cors-origins", "localhost", "--no-cors-credentials"]


def threads() -> int:
    """``WORKSHOP_THREADS``, else the physical cores: hyper-threads add little to token generation
    and slow the rest of the laptop."""
    return int_setting("threads", psutil.cpu_count(logical=False) or os.cpu_count() or 2, minimum=1)


def stop_server(home=None, name=NAME, records=None) -> bool:
    """Stop the recorded server and its per-model children; True if one was running.
    A record whose PID now belongs to another program is removed, and that program left alone."""
    home = server_home(home)
    if name == NAME and (legacy := _legacy_record(home)) is not None:
        process.kill_tree(legacy.pid)
        (home / "server.json").unlink(missing_ok=True)
        return True
    return process.stop(name, records or home)


def stop_helpers() -> list:
    """Stop every helper server recorded in the shared procs/ folder (``HELPER_PREFIX*``), such as one
    a lesson left running when its kernel restarted; returns the names that were running."""
    folder = process.records_home()
    names = sorted(p.stem for p in folder.glob(f"{HELPER_PREFIX}*.json"))
    stopped = [name for name in names if process.stop(name, folder)]
    for name in names:
        forget_helper(name)
    return stopped


def forget_helper(name: str) -> None:
    """Remove a stopped helper's lock file: each helper has a name of its own, used once."""
    (process.records_home() / f"{name}.lock").unlink(missing_ok=True)


def model_rss_mb(model: str, home=None):
    """Resident memory of the process serving ``model`` on the embedded server, in MB; else None.

    In router mode each model runs in its own child process, started with ``--alias MODEL``."""
    info = running_server(home)
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(info.pid).children(recursive=True) if info else []:
            if model in child.cmdline():
                return child.memory_info().rss / 1e6
    return None


def reload_model(base_url: str, model: str, timeout: float = 180, api_key=None) -> float:
    """Unload ``model`` from the router, load it again, and return the seconds the load took."""
    root = base_url.removesuffix("/v1")
    key = api_key or _key_for(root)
    with contextlib.suppress(OSError):  # not loaded yet: nothing to unload
        post_json(f"{root}/models/unload", {"model": model}, key)
    _wait_for_status(root, model, lambda status: status != "loaded", timeout, key)
    start = time.perf_counter()
    post_json(f"{root}/models/load", {"model": model}, key)
    _wait_for_status(root, model, lambda status: status == "loaded", timeout, key)
    return time.perf_counter() - start


def _wait_for_status(root: str, model: str, done, timeout: float, key) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = {m["id"]: m.get("status", {}).get("value") for m in get_json(f"{root}/v1/models", key)["data"]}
        if done(entries.get(model)):
            return
        time.sleep(0.05)
    raise EndpointError(f"Model {model} did not change state within {timeout:.0f} s.",
                        "Read the server log (`python -m workshop_lib status` shows where).")


def post_json(url: str, body: dict, api_key=None, timeout: float = 60) -> dict:
    """POST ``body`` as JSON to a llama-server endpoint and return its JSON answer.

    ``api_key`` goes out as ``Authorization: Bearer``; left out, our own key is sent, but only to
    our own embedded server."""
    return _call(urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}),
                 api_key, timeout)


def get_json(url: str, api_key=None, timeout: float = 10) -> dict:
    """GET a llama-server endpoint's JSON, with the key as in ``post_json``."""
    return _call(urllib.request.Request(url), api_key, timeout)


def _call(request: urllib.request.Request, api_key, timeout: float) -> dict:
    if key := api_key or _key_for(request.full_url):
        request.add_header("Authorization", f"Bearer {key}")
    with clients.urlopen(request, timeout=timeout) as resp:
        return json.load(resp)


def _key_for(url: str):
    """Our key if ``url`` is the embedded server's address, else None: it goes to no one else."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in (HOST, "localhost"):
        return None
    info = running_server()
    return info.api_key if info and info.port == parts.port and info.api_key else None


def choose_port(port=None) -> int:
    """The requested port if free on 127.0.0.1, else a clear error; no request: any free port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if os.name != "nt":  # bind as uvicorn and llama-server do: a stopped server's TIME_WAIT does not block
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (on Windows it would allow stealing a port)
        try:
            s.bind((HOST, int(port or 0)))
        except (OSError, OverflowError):
            raise PortInUseError(f"Port {port} on {HOST} is already in use{_port_owner(int(port))}.",
                                 "Stop that program, set WORKSHOP_PORT to another port, or unset "
                                 "WORKSHOP_PORT to let the workshop pick a free one.") from None
        return s.getsockname()[1]


def choose_app_port(port, variable: str) -> int:
    """``choose_port`` for an app the lessons start: a taken port's fix names the app's own setting."""
    try:
        return choose_port(port)
    except PortInUseError as exc:
        raise PortInUseError(exc.problem, f"Stop that program, or choose another port (`start(port=...)`, "
                             f"`--port`, {variable}), or none: then any free port is used.") from None


def _port_owner(port: int) -> str:
    """" by NAME (pid N)" for the program listening on ``port``, when this user may see it."""
    with contextlib.suppress(psutil.Error, OSError):
        for pid in _listeners(port):
            return f" by {psutil.Process(pid).name()} (pid {pid})"
    return ""


def _listeners(port: int):
    def listening(conns):
        return [c for c in conns if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN]
    try:  # the whole table needs root on macOS; fall back to this user's own processes
        yield from (c.pid for c in listening(psutil.net_connections("tcp")) if c.pid)
    except psutil.AccessDenied:
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if listening(proc.net_connections("tcp")):
                    yield proc.pid


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

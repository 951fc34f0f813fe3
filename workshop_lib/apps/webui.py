"""Open WebUI on the workshop's endpoint, offline and private (taught in 06_open_webui).

Open WebUI (PyPI ``open-webui``) pins about 90 packages to exact versions that differ from the lessons'
own, so it lives in a virtual environment of its own under the per-user cache, with the CPU build of
torch installed first. ``start()`` points it at whatever ``wl.connect()`` found, binds 127.0.0.1, keeps
its data and secret key in that folder, switches off everything that would call the internet or add
model calls, and creates the first (admin) account with a generated password, stored with mode 600.

    python -m workshop_lib.apps.webui install | start [--port N] | status | stop | reset
"""
import argparse
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import extras, pythons
from ..config import cache_dir, setting, write_atomic
from ..errors import WorkshopError
from ..measure import stats
from ..runtime import clients, endpoint, process
from ..runtime.server import HOST, choose_app_port

NAME = "open-webui"  # the process record's name
REQUIREMENTS = Path(__file__).resolve().with_name("openwebui-requirements.txt")
TORCH_PIN = "torch==2.13.0"  # installed first: a plain `torch` pulls a CUDA build of several GB on Linux
ADMIN_EMAIL = "admin@localhost"
SUPPORTED_PYTHONS = ((3, 12), (3, 11))  # open-webui 0.12.4 declares Requires-Python >=3.11,<3.13
NO_PYTHON_EXIT = 3  # `webui install`'s exit code when this machine has no Python Open WebUI supports


@dataclass
class WebUI:
    """A running Open WebUI: where it is, which endpoint it talks to, and how to sign in."""
    url: str
    pid: int
    endpoint: str
    start_s: float  # seconds from launch to a healthy /health; None if it was already running
    email: str
    credentials: Path
    log: str

    def password(self) -> str:
        return json.loads(self.credentials.read_text())["password"]


def home() -> Path:
    """``cache_dir()/webui``: the app's venv, its data, its secret key and the admin's credentials."""
    path = cache_dir() / "webui"
    path.mkdir(parents=True, exist_ok=True)
    if os.name != "nt":
        path.chmod(0o700)  # the database and the key file are nobody else's business
    return path


def executable() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return home() / "venv" / scripts / ("open-webui.exe" if os.name == "nt" else "open-webui")


def _venv_python() -> Path:
    return home() / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _install_digest() -> str:
    return f"{TORCH_PIN}\n{REQUIREMENTS.read_text(encoding='utf-8')}"


def is_installed() -> bool:
    stamp = home() / "venv" / ".installed"
    return executable().is_file() and stamp.is_file() and stamp.read_text() == _install_digest()


class NoSupportedPython(WorkshopError):
    """Open WebUI cannot be installed: no Python it supports on this machine."""

    def sentence(self) -> str:
        """The one line setup and lesson 06 print when they skip Open WebUI."""
        return f"Open WebUI skipped: {self.problem}; to use lesson 06, {self.fix}."


MISSING_PYTHON_FIX = ("install Python 3.12 (python.org; Windows `winget install Python.Python.3.12`; macOS `brew "
                      "install python@3.12`; Linux `pyenv install 3.12`, or your distribution's python3.12 with "
                      "its venv package), then run `python -m workshop_lib webui install`")


def app_python() -> Path:
    """The interpreter for Open WebUI's venv: this one if Open WebUI supports it, else one found on the
    machine (py launcher, python3.12/3.11 on PATH, pyenv); ``WORKSHOP_WEBUI_PYTHON`` names one
    yourself. Raises NoSupportedPython if none is supported."""
    if chosen := setting("webui_python"):
        found = pythons.version_of([chosen])
        if found and found[1] in SUPPORTED_PYTHONS:
            return found[0]
        have = f"WORKSHOP_WEBUI_PYTHON={chosen} is " + (f"Python {found[1][0]}.{found[1][1]}" if found else
                                                         "not a Python that starts")
    elif sys.version_info[:2] in SUPPORTED_PYTHONS:
        return Path(sys.executable)
    elif found := pythons.find(SUPPORTED_PYTHONS):
        return found
    else:
        have = f"this machine has only Python {sys.version.split()[0]}"
    raise NoSupportedPython(f"Open WebUI 0.12.4 needs Python 3.11 or 3.12, and {have}", MISSING_PYTHON_FIX)


def install(progress: bool = True) -> float:
    """Create the app's venv and pip-install Open WebUI into it (once); returns the seconds it took."""
    with process.exclusive(home() / "install.lock", waiting_for="another Open WebUI install to finish"):
        if is_installed():
            return 0.0
        start = time.perf_counter()
        _make_venv(app_python())
        log = home() / "install.log"
        index = ["--index-url", setting("torch_index")] if setting("torch_index") else []
        # torch by version, with what it pulls: its wheel (and, from PyPI on Linux, its CUDA libraries) differ by
        # index, so no one hash fits; everything else is hashed, below
        _pip(["install", TORCH_PIN, *index], log, progress, "torch (CPU)")
        _pip(install_arguments(), log, progress, "open-webui")
        (home() / "venv" / ".installed").write_text(_install_digest())
        return time.perf_counter() - start


def install_arguments(requirements: Path = REQUIREMENTS) -> list:
    return extras.hashed_install_arguments(requirements)


def _make_venv(python: Path) -> None:
    """The app's venv on ``python``; one left on another Python, or without pip (an interrupted
    creation), is made anew: pip could not install Open WebUI into it."""
    venv = home() / "venv"
    if _venv_python().exists():
        found = pythons.version_of([str(_venv_python())])
        has_pip = subprocess.run([str(_venv_python()), "-c", "import pip"], capture_output=True).returncode == 0
        if found and found[1] == pythons.version_of([str(python)])[1] and has_pip:
            return
        shutil.rmtree(venv)
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)


def _pip(args: list, log: Path, progress: bool, what: str) -> None:
    extras.run_pip_for("Open WebUI", "python -m workshop_lib webui install", args, log, _venv_python(), progress, what)


def secret_key() -> str:
    """Signs Open WebUI's session tokens: generated once, kept with mode 600 (else it writes one into
    the current directory)."""
    path = home() / "secret_key"
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


def _write_private(path: Path, text: str) -> None:
    write_atomic(path, text)
    if os.name != "nt":
        path.chmod(0o600)


def settings(base_url: str, api_key, port: int) -> dict:
    """Environment for ``open-webui serve``: our endpoint only, nothing fetched from the internet,
    no extra model calls per message. Read at every start (persistent config off), so a new
    endpoint port or backend applies the next time it starts."""
    return {
        "DATA_DIR": str(home() / "data"), "WEBUI_SECRET_KEY": secret_key(), "HF_HOME": str(home() / "hf"),
        "ENABLE_PERSISTENT_CONFIG": "False",
        "OPENAI_API_BASE_URL": base_url, "OPENAI_API_KEY": api_key or "not-needed",
        "ENABLE_OPENAI_API": "True", "ENABLE_OLLAMA_API": "False", "ENABLE_DIRECT_CONNECTIONS": "True",
        # offline: no embedding-model download at start, no version check, no telemetry
        "OFFLINE_MODE": "True", "HF_HUB_OFFLINE": "1", "ENABLE_VERSION_UPDATE_CHECK": "False",
        "RAG_EMBEDDING_ENGINE": "openai", "BYPASS_EMBEDDING_AND_RETRIEVAL": "True",
        "ANONYMIZED_TELEMETRY": "False", "DO_NOT_TRACK": "True", "SCARF_NO_ANALYTICS": "True",
        # about 36 built-in tool schemas (~6,600 tokens) would overflow a small model's context
        "DEFAULT_MODEL_METADATA": json.dumps({"capabilities": {"builtin_tools": False}}),
        # each of these adds a model call per message
        **{f"ENABLE_{task}_GENERATION": "False" for task in
           ("TITLE", "FOLLOW_UP", "TAGS", "AUTOCOMPLETE", "SEARCH_QUERY", "RETRIEVAL_QUERY")},
        # authentication on; the first account (ours) becomes admin, nobody else may sign up
        "WEBUI_AUTH": "True", "ENABLE_SIGNUP": "False", "ENABLE_COMMUNITY_SHARING": "False",
        "CORS_ALLOW_ORIGIN": f"http://{HOST}:{port}",
    }


def start(lab=None, port=None, ready_timeout: float = 240, progress: bool = True) -> WebUI:
    """Start Open WebUI on ``lab``'s endpoint (default: ``connect()``), or return the running one if it
    already serves that endpoint; installs it first if needed."""
    lab = lab or endpoint.connect(verbose=False)
    api_key = lab.api_key
    endpoint.list_models(lab.base_url, api_key)  # a down endpoint: say so now, not in the UI later
    serving = {"endpoint": lab.base_url, "key_sha256": hashlib.sha256((api_key or "").encode()).hexdigest()}
    with process.lock(NAME):  # the whole check-stop-start: another kernel cannot stop this one's app
        if (record := process.running(NAME)) and all(record.extra.get(k) == v for k, v in serving.items()):
            return _described(record, start_s=None)
        stop()  # one serving another endpoint: restart it on this one
        if not is_installed():
            install(progress)
        return _launch(lab, port, serving, ready_timeout)


def _launch(lab, port, serving: dict, ready_timeout: float) -> WebUI:
    """``open-webui serve`` on ``lab``'s endpoint, then its admin account; a failure leaves nothing running."""
    port = choose_app_port(port or setting("webui_port"), "WORKSHOP_WEBUI_PORT")
    url = f"http://{HOST}:{port}"
    started = time.perf_counter()
    # no proxy for our own servers: Open WebUI's HTTP clients read NO_PROXY (the user's entries kept)
    env = clients.no_proxy_environ({**_clean_environ(), **settings(lab.base_url, lab.api_key, port)})
    record = process.start(NAME, [str(executable()), "serve", "--host", HOST, "--port", str(port)], port=port,
                           health_url=f"{url}/health", log=home() / "open-webui.log", env=env, cwd=home(),
                           ready_timeout=ready_timeout, extra=serving)
    start_s = time.perf_counter() - started
    try:
        ensure_admin(url)
    except BaseException:
        stop()  # a UI nobody can sign in to is of no use: leave nothing running
        raise
    return _described(record, start_s)



def _clean_environ() -> dict:
    """This process's environment minus what would point Open WebUI's Python at the lessons' packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _described(record, start_s) -> WebUI:
    return WebUI(f"http://{HOST}:{record.port}", record.pid, record.extra.get("endpoint", ""), start_s,
                 ADMIN_EMAIL, home() / "admin.json", str(record.log))


def ensure_admin(url: str) -> None:
    """Create the admin account on a fresh database, with a generated password printed once."""
    credentials = home() / "admin.json"
    if credentials.exists():
        try:
            sign_in(url)
            return
        except WorkshopError:
            pass  # the database was reset: sign up again below
    password = secrets.token_urlsafe(18)
    try:
        _post(f"{url}/api/v1/auths/signup", {"name": "Workshop admin", "email": ADMIN_EMAIL, "password": password})
    except WorkshopError as exc:  # accounts exist, but not the password we keep: only a reset helps
        raise WorkshopError(f"Open WebUI already has accounts, and {credentials} does not hold a password "
                            f"that signs in ({exc.problem}).",
                            "Sign in with the password you have, or start afresh (this deletes its chats): "
                            "`python -m workshop_lib.apps.webui reset`.") from exc
    _write_private(credentials, json.dumps({"email": ADMIN_EMAIL, "password": password}))
    print(f"Open WebUI admin account created. Sign in at {url} with\n  email:    {ADMIN_EMAIL}\n"
          f"  password: {password}\n(shown once; kept in {credentials}, readable only by you)")


def sign_in(url: str) -> str:
    """A session token for the admin account (send it as ``Authorization: Bearer``)."""
    creds = json.loads((home() / "admin.json").read_text())
    return _post(f"{url}/api/v1/auths/signin", creds)["token"]


def _post(url: str, body: dict, token=None) -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with clients.urlopen(request, timeout=60) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise WorkshopError(f"Open WebUI refused {url} (HTTP {exc.code}): {detail}",
                            f"Read {home() / 'open-webui.log'}; `python -m workshop_lib.apps.webui stop` "
                            "then start again.") from exc


def overhead_ms(results, column: str = "ttft_s", via: str = "open-webui", direct: str = "direct") -> float:
    """What the UI layer adds to ``column`` (seconds) of a request, in milliseconds: the median over ``pair`` of
    (``via`` minus ``direct``). Paired because both requests of a pair ran back to back, so whatever slowed the
    machine for a while slowed both (``results``: one row per request, columns ``pair``, ``path``, ``column``)."""
    return float(np.nanmedian(_paired_differences_ms(results, column, via, direct)))  # as pandas: a missing pair is skipped


def _paired_differences_ms(results, column: str, via: str = "open-webui", direct: str = "direct"):
    """Per pair, ``via`` minus ``direct`` in milliseconds (both requests of a pair side by side)."""
    side_by_side = results.pivot(index="pair", columns="path", values=column)
    return (side_by_side[via] - side_by_side[direct]).to_numpy() * 1000


def overhead_interval_ms(results, column: str = "ttft_s", level: float = 0.95) -> tuple:
    """A bootstrap interval over pairs for ``overhead_ms``: the pairs are resampled, each keeping its two
    requests together, so the interval is as paired as the median it brackets."""
    differences = _paired_differences_ms(results, column)
    interval = stats.paired_bootstrap(len(differences), lambda i: {"median": float(np.median(differences[i]))},
                                      level=level)
    return float(interval.loc["median", "ci_low"]), float(interval.loc["median", "ci_high"])


def running():
    """The running Open WebUI as a ``WebUI``, or None."""
    record = process.running(NAME)
    return _described(record, start_s=None) if record else None


def stop() -> bool:
    """Stop Open WebUI and everything it started; True if one was running."""
    return process.stop(NAME)


def reset() -> None:
    """Stop it and delete its data (accounts, chats) and the admin's credentials; the install stays."""
    stop()
    shutil.rmtree(home() / "data", ignore_errors=True)
    (home() / "admin.json").unlink(missing_ok=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workshop_lib.apps.webui", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["install", "start", "status", "stop", "reset"])
    parser.add_argument("--port", type=int, help="default: WORKSHOP_WEBUI_PORT, else any free port")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(f"Open WebUI installed in {home() / 'venv'} ({install():.0f} s)")
        elif args.command == "start":
            ui = start(port=args.port)
            print(f"Open WebUI (pid {ui.pid}) at {ui.url}, on the endpoint {ui.endpoint}\n"
                  f"sign in as {ui.email}; the password is in {ui.credentials}; log: {ui.log}")
        elif args.command == "status":
            ui = running()
            print(f"running (pid {ui.pid}) at {ui.url}, on {ui.endpoint}" if ui else "not running")
            return 0 if ui else 3
        elif args.command == "stop":
            print("stopped" if stop() else "Open WebUI was not running")
        else:
            reset()
            print(f"Open WebUI stopped; its accounts and chats in {home() / 'data'} are deleted")
    except NoSupportedPython as exc:  # not a failed setup: lesson 06 skips Open WebUI and says why
        print(exc.sentence())
        return NO_PYTHON_EXIT
    except WorkshopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

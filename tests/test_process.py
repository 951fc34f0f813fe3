"""The managed-process module, with small Python programs standing in for servers (any OS)."""
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from workshop_lib.errors import WorkshopError
from workshop_lib.runtime import process, server

# A stand-in server, one request at a time like a server whose slots are all taken: GET /generate keeps
# "generating" while the file argv[2] exists (it touches argv[2] + ".started" first, so a test knows the
# request is in flight); every other GET, /health included, answers 200 once nothing is generating.
STANDIN = r"""
import http.server, pathlib, sys, time
busy = pathlib.Path(sys.argv[2])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/generate":
            pathlib.Path(str(busy) + ".started").touch()
            while busy.exists():
                time.sleep(0.1)
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def start_standin(home: Path, name="standin", busy=None, ready_timeout=30, **kwargs) -> process.Record:
    port = server.choose_port()
    busy = busy or home / "not-busy"
    return process.start(name, [sys.executable, "-c", STANDIN, str(port), str(busy)], port=port,
                         health_url=f"http://127.0.0.1:{port}/health", log=home / f"{name}.log",
                         ready_timeout=ready_timeout, home=home, **kwargs)


@contextlib.contextmanager
def generating(record: process.Record, busy: Path):
    """A real request in flight on the stand-in for the whole block: every health check meanwhile waits
    behind it, far past any health-check timeout. Afterwards the request must finish with 200."""
    busy.touch()
    answers = []
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    request = threading.Thread(target=lambda: answers.append(direct.open(record.url + "/generate", timeout=120).status))
    request.start()
    started = Path(str(busy) + ".started")
    try:
        wait_for(started.exists, "the stand-in to start generating")
        yield
        assert request.is_alive(), "the request was no longer in flight when the block ended"
    finally:
        busy.unlink(missing_ok=True)
        request.join(timeout=30)
    assert answers == [200]  # the request was served to the end: nothing stopped the server under it


def wait_for(condition, what: str, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(0.05)
    return result


def sleeper() -> subprocess.Popen:
    """Some other program of the user's: it must survive whatever our records say."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_start_records_identity_and_stop_ends_it(tmp_path):
    record = start_standin(tmp_path, extra={"note": "x"})
    try:
        saved = json.loads((tmp_path / "standin.json").read_text())
        assert saved["pid"] == record.pid and saved["create_time"] > 0 and saved["exe"]
        assert record.url == f"http://127.0.0.1:{record.port}" and record.extra == {"note": "x"}
        assert process.running("standin", tmp_path) == record
        assert start_standin(tmp_path).pid == record.pid  # already running: reused, not started twice
    finally:
        assert process.stop("standin", tmp_path)
    assert gone(record.pid) and not (tmp_path / "standin.json").exists()
    assert process.running("standin", tmp_path) is None and not process.stop("standin", tmp_path)


def test_a_record_with_a_reused_pid_never_kills_that_process(tmp_path):
    other = sleeper()
    try:
        me = psutil.Process(other.pid)
        for create_time, exe in ((me.create_time() - 3600, me.exe()),  # same PID, started earlier: reused
                                 (me.create_time(), str(tmp_path / "llama-server"))):  # other program
            record = process.Record("srv", other.pid, create_time, exe, 9, "http://127.0.0.1:9", "log", 0.0)
            (tmp_path / "srv.json").write_text(json.dumps(record.__dict__))
            assert process.running("srv", tmp_path) is None
            assert not (tmp_path / "srv.json").exists()  # the stale record is gone...
            (tmp_path / "srv.json").write_text(json.dumps(record.__dict__))
            assert process.stop("srv", tmp_path) is False
            assert other.poll() is None  # ...and the process that now has that PID still runs
    finally:
        other.kill()
        other.wait()


def test_a_busy_server_is_kept(tmp_path):
    busy = tmp_path / "busy"
    record = start_standin(tmp_path, busy=busy)
    try:
        with generating(record, busy):  # it answers nothing else until this request is done
            assert process.running("standin", tmp_path) == record
            assert process.running("standin", tmp_path) == record  # a second lookup still finds it
            assert start_standin(tmp_path, busy=busy).pid == record.pid  # reused, not replaced or started twice
            assert psutil.pid_exists(record.pid) and (tmp_path / "standin.json").exists()
    finally:
        process.stop("standin", tmp_path)


def test_interrupt_while_waiting_for_health_kills_the_new_process(tmp_path, monkeypatch):
    started = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    def interrupted(url):
        raise KeyboardInterrupt

    monkeypatch.setattr(process.subprocess, "Popen", popen)
    monkeypatch.setattr(process, "_healthy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        start_standin(tmp_path)
    assert started and gone(started[0].pid)
    assert not (tmp_path / "standin.json").exists()


def test_interrupt_right_after_spawning_is_held_until_the_process_is_known(tmp_path, monkeypatch):
    """Ctrl-C arriving between Popen and the line that keeps its result must not orphan the child."""
    started = []
    real_popen = subprocess.Popen

    def popen_then_ctrl_c(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        signal.raise_signal(signal.SIGINT)
        time.sleep(0.2)  # the handler runs here, in the main thread
        return started[-1]

    monkeypatch.setattr(process.subprocess, "Popen", popen_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        start_standin(tmp_path)
    assert started and gone(started[0].pid)
    assert not (tmp_path / "standin.json").exists()


def test_a_program_that_exits_at_start_reports_its_log(tmp_path):
    with pytest.raises(WorkshopError, match="exited with code 3") as err:
        process.start("bad", [sys.executable, "-c", "print('no model file'); raise SystemExit(3)"], port=9,
                      health_url="http://127.0.0.1:9/health", log=tmp_path / "bad.log", home=tmp_path)
    assert "no model file" in str(err.value)
    assert not (tmp_path / "bad.json").exists()


def test_a_program_that_never_answers_is_stopped_after_the_timeout(tmp_path):
    with pytest.raises(WorkshopError, match="did not answer"):
        process.start("mute", [sys.executable, "-c", "import time; time.sleep(60)"], port=9,
                      health_url="http://127.0.0.1:9/health", log=tmp_path / "mute.log", home=tmp_path,
                      ready_timeout=1)
    assert not (tmp_path / "mute.json").exists()
    assert not [p for p in psutil.Process().children(recursive=True) if "time.sleep(60)" in " ".join(p.cmdline())]


HOLD_LOCK = """
import sys, time
from workshop_lib.runtime import process
with process.exclusive(sys.argv[1], "test"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_exclusive_waits_and_says_what_for(tmp_path, capsys):
    lock = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock), "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        with process.exclusive(lock, "the other test process"):
            waited = time.monotonic() - t0
    finally:
        holder.wait()
    assert waited > 0.5
    assert "Waiting for the other test process" in capsys.readouterr().out


def test_sweep_removes_partials_of_dead_writers_only(tmp_path):
    mine = process.partial_path(tmp_path / "model.gguf")
    mine.write_text("being written")
    dead = tmp_path / "model.gguf.partial-999999-1"
    dead.write_text("left by a killed writer")
    folder = tmp_path / "onnx-dir.partial-999998-1"
    folder.mkdir()
    (folder / "x").write_text("")
    assert sorted(process.sweep_partials(tmp_path)) == sorted([dead, folder])
    assert mine.exists() and not dead.exists() and not folder.exists()


def test_reaped_kills_the_child_tree_on_interrupt(tmp_path):
    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    # The grandchild starts some time after the child: a snapshot before that would check nothing.
    family = wait_for(lambda: psutil.Process(proc.pid).children(recursive=True), "the grandchild to start")
    assert len(family) == 1
    with pytest.raises(KeyboardInterrupt), process.reaped(proc):
        raise KeyboardInterrupt
    assert proc.poll() is not None and all(gone(p.pid) for p in family)


def test_windows_lock_waits_past_ten_seconds_instead_of_raising(tmp_path, monkeypatch):
    """msvcrt's blocking mode raises OSError after 10 tries; we poll the non-blocking mode instead."""
    calls = []

    class FakeMsvcrt:  # held by another process for the first 30 polls (15 s at 0.5 s each)
        LK_NBLCK, LK_UNLCK = 2, 0

        @staticmethod
        def locking(fd, mode, nbytes):
            calls.append(mode)
            if mode == FakeMsvcrt.LK_NBLCK and calls.count(mode) <= 30:
                raise OSError(36, "Resource deadlock avoided")

    monkeypatch.setattr(process.time, "sleep", lambda s: None)
    with open(tmp_path / "w.lock", "a+b") as handle:
        assert process._msvcrt_lock(FakeMsvcrt, handle, blocking=True)  # the Windows code path, on any OS
        assert calls.count(FakeMsvcrt.LK_NBLCK) == 31
        calls.clear()
        assert not process._msvcrt_lock(FakeMsvcrt, handle, blocking=False)  # taken: no wait at all
        assert calls == [FakeMsvcrt.LK_NBLCK]

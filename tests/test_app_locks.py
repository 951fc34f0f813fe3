"""Apps and helper servers (issue 17, point 6), with small Python programs standing in for them.

- Chainlit and Open WebUI: two kernels starting the app at once must not stop each other's app.
- Lesson 05's throwaway server: its record is where `python -m workshop_lib stop` finds it.
"""
import os
import stat
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
from test_process import STANDIN, gone

from workshop_lib.apps import chainlit_app, webui
from workshop_lib.routing import fallback
from workshop_lib.runtime import endpoint, llamacpp, process, server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = SimpleNamespace(base_url="http://127.0.0.1:9/v1", api_key="k", models={"slm": "m"}, available=["m"])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(endpoint, "list_models", lambda *a, **k: ["m"])  # the model endpoint answers
    return tmp_path / "cache"


def standin_command(port, tmp_path) -> list:
    return [sys.executable, "-c", STANDIN, str(port), str(tmp_path / "not-busy")]


@pytest.fixture
def chainlit_standin(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(chainlit_app, "_require_chainlit", lambda: None)
    monkeypatch.setattr(chainlit_app, "command", lambda port: standin_command(port, tmp_path))
    return lambda: chainlit_app.start(LAB), chainlit_app.NAME


@pytest.fixture
def webui_standin(cache, tmp_path, monkeypatch):
    """``open-webui serve --host H --port P`` is a script that serves 200 on that port."""
    script = tmp_path / "open-webui"
    script.write_text(f"#!{sys.executable}\nimport sys\n"
                      f"sys.argv = [sys.argv[0], sys.argv[sys.argv.index('--port') + 1], {str(tmp_path / 'x')!r}]\n"
                      + STANDIN)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(webui, "executable", lambda: script)
    monkeypatch.setattr(webui, "is_installed", lambda: True)
    monkeypatch.setattr(webui, "ensure_admin", lambda url: None)
    return lambda: webui.start(LAB, progress=False).url, webui.NAME


@pytest.mark.skipif(os.name == "nt", reason="the Open WebUI stand-in is a POSIX script")
@pytest.mark.parametrize("app", ["chainlit_standin", "webui_standin"])
def test_two_kernels_starting_the_app_at_once_share_one_app(app, request, monkeypatch):
    """Both kernels look before either starts (the barrier), and the second is the slower one: it
    reaches "stop the app that serves something else" only once the first one's app runs."""
    start_app, name = request.getfixturevalue(app)
    looked, real_running, real_stop = threading.Barrier(2, timeout=1.5), process.running, process.stop
    stops, started = [], []

    def running(*args, **kwargs):
        found = real_running(*args, **kwargs)
        try:
            looked.wait()
        except threading.BrokenBarrierError:
            pass  # the other kernel waits for the lock instead of looking at the same time: fine
        return found

    def stop(*args, **kwargs):
        stops.append(threading.current_thread().name)
        if len(stops) == 2:  # the slower kernel
            deadline = time.monotonic() + 20
            while real_running(name) is None and time.monotonic() < deadline:
                time.sleep(0.05)
        return real_stop(*args, **kwargs)
    monkeypatch.setattr(process, "running", running)
    monkeypatch.setattr(process, "stop", stop)
    real_start = process.start
    monkeypatch.setattr(process, "start", lambda *a, **k: started.append(1) or real_start(*a, **k))

    urls = {}
    kernels = [threading.Thread(target=lambda n=n: urls.__setitem__(n, start_app()), name=f"kernel-{n}")
               for n in (1, 2)]
    try:
        for kernel in kernels:
            kernel.start()
        for kernel in kernels:
            kernel.join(60)
        record = real_running(name)
        assert record is not None and urls[1] == urls[2] == record.url  # one app, and both kernels use it
        assert len(started) == 1  # nobody stopped the other's app to start its own
    finally:
        real_stop(name)


# ---------------------------------------------------------------- lesson 05's throwaway server

@pytest.fixture
def standin_llama_server(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(llamacpp, "ensure_built", lambda progress=True: sys.executable)
    monkeypatch.setattr(server, "_link_models", lambda model_dir, aliases, progress: model_dir)
    monkeypatch.setattr(server, "server_command", lambda exe, model_dir, port: standin_command(port, tmp_path))
    return cache


def stop_command(cache) -> str:
    """`python -m workshop_lib stop` in a process of its own, as after a kernel restart."""
    env = {**os.environ, "WORKSHOP_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-m", "workshop_lib", "stop"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_throwaway_server_is_recorded_where_stop_finds_it(standin_llama_server):
    cache = standin_llama_server
    with fallback.ThrowawayServer("qwen2.5-coder-0.5b") as throwaway:
        record = cache / "procs" / f"{throwaway.name}.json"
        first = throwaway.info.pid
        assert record.exists() and throwaway.running() and throwaway.home.is_relative_to(cache)
        assert f"stopped {throwaway.name}" in stop_command(cache)
        assert gone(first) and not record.exists() and not throwaway.running()
        second = throwaway.start().info.pid  # the lesson starts it again within the block
        assert record.exists() and not gone(second)
    assert gone(second) and not record.exists() and not throwaway.home.exists()
    assert f"stopped {throwaway.name}" not in stop_command(cache)  # nothing left to stop


def test_a_throwaway_server_that_fails_to_start_leaves_nothing(standin_llama_server, monkeypatch):
    monkeypatch.setattr(server, "server_command", lambda exe, model_dir, port: [
        sys.executable, "-c", "raise SystemExit('error: bad model')"])
    throwaway = fallback.ThrowawayServer("qwen2.5-coder-0.5b")
    with pytest.raises(Exception, match="bad model"):
        with throwaway:
            pytest.fail("the block must not run")
    assert not throwaway.home.exists() and not list((standin_llama_server / "procs").glob("llama-server-*"))

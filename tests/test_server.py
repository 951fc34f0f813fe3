import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import psutil
import pytest
from conftest import REAL_CACHE, finished_artifacts, needs_server
from test_process import STANDIN, generating, gone, start_standin

from workshop_lib import config
from workshop_lib.measure import bench
from workshop_lib.runtime import endpoint, llamacpp, models, process, server
from workshop_lib.errors import EndpointError, PortInUseError, WorkshopError


def test_a_unit_test_never_sees_the_learners_cache():
    cache = config.cache_dir()
    assert cache != REAL_CACHE and not cache.is_relative_to(REAL_CACHE) and list(cache.iterdir()) == []
    assert server.server_home() == cache / "server"  # the key, records and logs a test makes land here


@pytest.mark.server
def test_a_server_test_reuses_the_real_build_and_models_but_keeps_its_state_apart():
    cache = config.cache_dir()
    assert cache != REAL_CACHE and server.server_home() == cache / "server"
    for folder, name in finished_artifacts(REAL_CACHE):
        assert (cache / folder / name).resolve() == (REAL_CACHE / folder / name).resolve()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKSHOP_CACHE_DIR", str(REAL_CACHE))
        in_real_cache = ready_to_serve()
    assert ready_to_serve() == in_real_cache  # what needs_server saw is what the test finds


def ready_to_serve():
    return llamacpp.is_built(), {alias: spec.path.exists() for alias, spec in models.load_registry().items()}


def test_free_port_is_picked_on_loopback():
    port = server.choose_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # really free


LISTEN = "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); " \
         "print(s.getsockname()[1], flush=True); time.sleep(60)"


def test_taken_port_gives_clear_error():
    other = subprocess.Popen([sys.executable, "-c", LISTEN], stdout=subprocess.PIPE, text=True)
    try:
        port = int(other.stdout.readline())
        with pytest.raises(PortInUseError, match="WORKSHOP_PORT") as err:
            server.choose_port(port)
        assert f"Port {port}" in str(err.value) and f"pid {other.pid}" in str(err.value)  # names the holder
    finally:
        other.kill()
        other.wait()


def test_a_port_whose_last_server_just_stopped_is_free_again():
    """A server that just stopped leaves its closed connections in TIME_WAIT for a minute; the servers we start
    (uvicorn, llama-server) bind with SO_REUSEADDR through that, so the probe must not call the port taken."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's (Linux needs it on both sides)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server closes first: its side of the connection waits in TIME_WAIT
    client.close()
    listener.close()
    assert server.choose_port(port) == port


def test_command_binds_loopback_and_sizes_for_the_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_PARALLEL", "2")
    cmd = server.server_command(tmp_path / "llama-server", tmp_path, 8080)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("-np") + 1] == "2" and cmd[cmd.index("-c") + 1] == "8192"
    assert int(cmd[cmd.index("-t") + 1]) >= 1
    assert cmd[cmd.index("--cors-origins") + 1] == "localhost"  # no web page elsewhere may read answers
    assert not any(server.api_key() in part for part in cmd)  # the key is not on the command line


@pytest.mark.parametrize("name, value", [("parallel", "four"), ("threads", "0"), ("context_per_slot", "4k")])
def test_a_malformed_setting_names_itself(monkeypatch, tmp_path, name, value):
    monkeypatch.setenv(f"WORKSHOP_{name.upper()}", value)
    with pytest.raises(WorkshopError, match=f"WORKSHOP_{name.upper()} is '{value}'"):
        server.server_command(tmp_path / "llama-server", tmp_path, 8080)


def test_api_key_is_made_once_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_CACHE_DIR", str(tmp_path))
    key = server.api_key()
    assert len(key) >= 32 and server.api_key() == key
    path = tmp_path / "server" / "api_key"
    assert path.read_text() == key
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600


def test_stale_state_is_cleaned_up(tmp_path):
    record = process.Record("llama-server", 2**22 + 7, 1.0, "llama-server", 9, "x", "x", 0.0, {})
    (tmp_path / "llama-server.json").write_text(json.dumps(record.__dict__))
    (tmp_path / "server.json").write_text(json.dumps(  # an older version's record
        {"pid": 2**22 + 7, "port": 9, "log": "x", "models": [], "started_at": 0}))
    assert server.running_server(tmp_path) is None
    assert not (tmp_path / "server.json").exists() and not (tmp_path / "llama-server.json").exists()


def test_an_old_record_with_a_reused_pid_never_kills_that_process(tmp_path):
    """After a reboot the PID in an old state file may be the learner's JupyterLab: leave it alone."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "server.json").write_text(json.dumps(
            {"pid": other.pid, "port": 9, "log": "x", "models": [], "started_at": 0}))
        assert server.running_server(tmp_path) is None
        (tmp_path / "server.json").write_text(json.dumps(
            {"pid": other.pid, "port": 9, "log": "x", "models": [], "started_at": 0}))
        assert server.stop_server(tmp_path) is False
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_busy_server_survives_a_second_lookup(tmp_path, monkeypatch):
    """Busy with a request for longer than any health check: still ours, still running, found again."""
    monkeypatch.setattr(llamacpp, "ensure_built", lambda progress=True: pytest.fail("not found: would build one"))
    busy = tmp_path / "busy"
    record = start_standin(tmp_path, name=server.NAME, busy=busy)
    try:
        with generating(record, busy):  # a request in flight: the stand-in answers nothing else meanwhile
            first = server.running_server(tmp_path)
            second = server.start_server(home=tmp_path)  # what connect() calls: finds it, starts nothing
            assert first.pid == second.pid == record.pid and psutil.pid_exists(record.pid)
    finally:
        assert server.stop_server(tmp_path)
    assert gone(record.pid) and server.running_server(tmp_path) is None


@pytest.fixture
def standin_server(tmp_path, monkeypatch):
    """start_server() with a small Python program in place of llama-server (no build, no models)."""
    monkeypatch.setattr(llamacpp, "ensure_built", lambda progress=True: sys.executable)
    monkeypatch.setattr(server, "_link_models", lambda model_dir, aliases, progress: model_dir)
    env_probe = "import os, sys; print('key in env:', bool(os.environ.get('LLAMA_API_KEY')), flush=True); "
    monkeypatch.setattr(server, "server_command", lambda exe, model_dir, port: [
        sys.executable, "-c", env_probe + STANDIN.replace("sys.argv[1]", str(port)), "-", str(tmp_path / "busy")])
    return tmp_path / "home"


def test_start_server_passes_the_key_in_the_environment(standin_server):
    info = server.start_server(home=standin_server, aliases=["x"], progress=False)
    try:
        assert info.api_key == server.api_key()
        assert server.start_server(home=standin_server).pid == info.pid
        assert "key in env: True" in open(info.log).read()
    finally:
        server.stop_server(standin_server)


def test_an_interrupt_during_start_leaves_no_server(standin_server, monkeypatch):
    spawned = []
    real_popen = subprocess.Popen
    monkeypatch.setattr(process.subprocess, "Popen", lambda *a, **k: spawned.append(real_popen(*a, **k)) or spawned[-1])

    def ctrl_c(url):
        raise KeyboardInterrupt
    monkeypatch.setattr(process, "_healthy", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        server.start_server(home=standin_server, aliases=["x"], progress=False)
    assert spawned and gone(spawned[0].pid)
    assert server.running_server(standin_server) is None


def test_a_malformed_port_setting_names_itself(standin_server, monkeypatch):
    monkeypatch.setenv("WORKSHOP_PORT", "80a")
    with pytest.raises(WorkshopError, match="(?s)WORKSHOP_PORT is '80a'.*such as 8080"):
        server.start_server(home=standin_server, aliases=["x"], progress=False)


def test_a_server_that_fails_to_start_says_where_its_log_is(standin_server, monkeypatch):
    monkeypatch.setattr(server, "server_command", lambda exe, model_dir, port: [
        sys.executable, "-c", "print('error: bad model'); raise SystemExit(1)"])
    with pytest.raises(EndpointError, match="bad model") as err:
        server.start_server(home=standin_server, aliases=["x"], progress=False)
    assert "llama-server.log" in str(err.value)


@needs_server
def test_second_server_is_reused_and_reached_through_the_environment(tmp_path, monkeypatch):
    """A second embedded server on another port stands in for "a running service"."""
    info = server.start_server(home=tmp_path, aliases=["qwen2.5-coder-0.5b"], progress=False)
    try:
        assert server.start_server(home=tmp_path).pid == info.pid  # found again, not started twice
        check_key_and_cross_origin(info)
        monkeypatch.setenv("WORKSHOP_ENDPOINT", f"http://127.0.0.1:{info.port}")
        monkeypatch.setenv("WORKSHOP_API_KEY", info.api_key)
        lab = endpoint.connect(verbose=False)
        assert lab.backend == "environment" and lab.slm == "qwen2.5-coder-0.5b" and lab.api_key == info.api_key
        row = bench.stream_once(lab.client, lab.slm, [{"role": "user", "content": "Say hello."}], max_tokens=8)
        assert row["text"] and 0 < row["completion_tokens"] <= 8 and row["ttft_s"] < row["e2e_s"]
        assert row["server_decode_tps"] > 0  # llama-server's own timings arrive in the stream
    finally:
        assert server.stop_server(tmp_path)
    assert server.running_server(tmp_path) is None


def check_key_and_cross_origin(info):
    """Only /health answers without the key; only pages from this machine may read answers."""
    root = f"http://127.0.0.1:{info.port}"

    def get(path, **headers):
        try:
            with urllib.request.urlopen(urllib.request.Request(root + path, headers=headers), timeout=10) as resp:
                return resp.status, resp.headers
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers

    assert get("/health")[0] == 200
    assert get("/v1/models")[0] == 401
    status, headers = get("/v1/models", Authorization=f"Bearer {info.api_key}", Origin="http://localhost:8888")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://localhost:8888"
    status, headers = get("/v1/models", Authorization=f"Bearer {info.api_key}", Origin="https://example.com")
    assert "Access-Control-Allow-Origin" not in headers
    tokens = server.post_json(f"{root}/tokenize", {"model": info.models[0], "content": "hello"}, api_key=info.api_key)["tokens"]
    assert tokens
    with pytest.raises(urllib.error.HTTPError, match="401"):
        server.post_json(f"{root}/tokenize", {"model": info.models[0], "content": "hello"})  # not the default server: no key sent


@pytest.fixture
def embedded_lab(monkeypatch):
    """connect() with no endpoint in the environment and no Foundry service: the embedded server."""
    for variable in endpoint.ENDPOINT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(endpoint, "foundry_service_url", lambda: None)
    return endpoint.connect(verbose=False)


@needs_server
def test_connect_uses_the_embedded_server(embedded_lab):
    lab = embedded_lab
    assert lab.backend == "embedded" and lab.base_url.startswith("http://127.0.0.1:")
    assert (lab.slm, lab.llm) == ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
    assert "gemma-3-270m" in lab.available


@needs_server
def test_tokenizer_fallback_counts_like_the_server(embedded_lab):
    """Servers without usage get their tokens counted by the model's own tokenizer (/tokenize)."""
    lab = embedded_lab
    row = bench.stream_once(lab.client, lab.slm, [{"role": "user", "content": "Name three fruits."}], max_tokens=24)
    counted = bench.llama_server_tokenizer(lab.base_url, lab.slm)(row["text"])
    assert abs(counted - row["completion_tokens"]) <= 1  # the end-of-turn token has no text

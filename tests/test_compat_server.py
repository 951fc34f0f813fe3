"""The second real server (llama-cpp-python's), serving our GGUFs under Foundry Local's ids."""
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import psutil
import pytest
from conftest import needs_server

from workshop_lib.errors import PortInUseError
from workshop_lib.runtime import capabilities, compat_server, endpoint, server

pytestmark = [needs_server, pytest.mark.server, pytest.mark.install]  # pip-installs llama-cpp-python[server]


@pytest.fixture(scope="module")
def compat():
    """The running compat server, started here if needed (and then stopped here)."""
    already = compat_server.running()
    found = already or compat_server.start(progress=False)
    yield found
    if not already:
        compat_server.stop()


@pytest.fixture
def clean_env(monkeypatch):
    for variable in (*endpoint.ENDPOINT_VARIABLES, "WORKSHOP_SLM_MODEL", "WORKSHOP_LLM_MODEL", "WORKSHOP_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_installed_without_compiling_and_idempotent(compat):
    compat_server.ensure_installed()  # the fixture may have found a server another venv started
    assert compat_server.is_installed()
    compat_server.ensure_installed()  # nothing to do the second time


def test_listens_on_localhost_only_and_wants_the_key(compat):
    ports = {c.laddr for c in psutil.Process(compat.pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert ports == {("127.0.0.1", compat.port)}
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{compat.base_url}/models", timeout=10)
    assert err.value.code == 401


def test_connect_resolves_the_foundry_defaults_by_name(compat, clean_env, capsys):
    clean_env.setenv("WORKSHOP_ENDPOINT", compat.base_url)
    lab = endpoint.connect()
    assert (lab.backend, lab.base_url, lab.api_key) == ("environment", compat.base_url, server.api_key())
    assert lab.available == list(compat_server.FOUNDRY_IDS.values())
    assert lab.slm == "qwen2.5-coder-0.5b-instruct-generic-cpu:4"  # the Foundry defaults, first choices
    assert lab.llm == "qwen2.5-coder-1.5b-instruct-generic-cpu:4"
    assert "Backend: environment" in capsys.readouterr().out


def test_as_a_foundry_endpoint_too(compat, clean_env):
    clean_env.setenv("FOUNDRY_LOCAL_ENDPOINT", compat.base_url.removesuffix("/v1"))
    lab = endpoint.connect(verbose=False)
    assert lab.backend == "foundry-service" and lab.api_key == server.api_key()
    assert (lab.slm, lab.llm) == tuple(compat_server.FOUNDRY_IDS.values())


def test_capabilities_are_found_by_asking(compat, clean_env):
    clean_env.setenv("WORKSHOP_ENDPOINT", compat.base_url)
    lab = endpoint.connect(verbose=False)
    found = lab.capabilities
    assert not (found.streamed_usage or found.timings or found.prompt_cache_control or found.metrics)
    assert not (found.model_management or found.concurrent_models or found.process_memory)
    assert found.completions and found.tokenize  # llama-cpp-python's /extras/tokenize
    assert capabilities.probe(lab.base_url, [lab.slm]).tokenize_route == "/extras/tokenize"
    assert lab.token_counter(lab.slm)("Hello world") == 2


def test_a_real_stream_has_no_usage_there(compat, clean_env):
    clean_env.setenv("WORKSHOP_ENDPOINT", compat.base_url)
    lab = endpoint.connect(verbose=False)
    chunks = list(lab.client.chat.completions.create(
        model=lab.slm, max_tokens=8, temperature=0, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Say hello."}]))
    assert chunks and all(getattr(c, "usage", None) is None for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert 0 < lab.token_counter(lab.slm)(text) <= 8


def test_command_line_prints_the_environment_for_notebooks(compat):
    module = [sys.executable, "-m", "workshop_lib.runtime.compat_server"]
    out = subprocess.run([*module, "start", "--print-env"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"WORKSHOP_ENDPOINT={compat.base_url}"]  # no key: connect() knows it
    status = subprocess.run([*module, "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and f"pid {compat.pid}" in status.stdout


def test_config_keeps_requests_queued_and_the_key_private(compat):
    settings = compat_server.home() / "config.json"
    assert json.loads(settings.read_text())["interrupt_requests"] is False
    if sys.platform != "win32":
        assert settings.stat().st_mode & 0o077 == 0


def test_our_key_goes_to_our_servers_only(compat):
    assert endpoint.own_key(f"http://localhost:{compat.port}/v1") == server.api_key()
    assert endpoint.own_key(f"http://127.0.0.1:{server.choose_port()}/v1") is None
    assert endpoint.own_key(f"http://192.0.2.1:{compat.port}/v1") is None


def test_a_taken_port_is_named_with_its_fix(compat, monkeypatch):
    monkeypatch.setattr(compat_server, "running", lambda: None)  # as if none ran: go on to choosing the port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(PortInUseError) as err:
            compat_server.start(taken.getsockname()[1], progress=False)
    assert "already in use" in err.value.problem and "--port" in err.value.fix

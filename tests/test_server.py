import json
import socket

import pytest
from conftest import needs_server

from workshop_lib.measure import bench
from workshop_lib.runtime import endpoint, server
from workshop_lib.errors import PortInUseError


def test_free_port_is_picked_on_loopback():
    port = server.choose_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # really free


def test_taken_port_gives_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(PortInUseError, match="WORKSHOP_PORT") as err:
            server.choose_port(s.getsockname()[1])
        assert "python" in str(err.value).lower()  # names the program holding it


def test_command_binds_loopback_and_sizes_for_the_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_PARALLEL", "2")
    cmd = server.server_command(tmp_path / "llama-server", tmp_path, 8080)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("-np") + 1] == "2" and cmd[cmd.index("-c") + 1] == "8192"
    assert int(cmd[cmd.index("-t") + 1]) >= 1


def test_stale_state_is_cleaned_up(tmp_path):
    (tmp_path / "server.json").write_text(json.dumps(
        {"pid": 2**22 + 7, "port": 9, "log": "x", "models": [], "started_at": 0}))
    assert server.running_server(tmp_path) is None
    assert not (tmp_path / "server.json").exists()


@needs_server
def test_second_server_is_reused_and_reached_through_the_environment(tmp_path, monkeypatch):
    """A second embedded server on another port stands in for "a running service"."""
    info = server.start_server(home=tmp_path, aliases=["qwen2.5-coder-0.5b"], progress=False)
    try:
        assert server.start_server(home=tmp_path).pid == info.pid  # found again, not started twice
        monkeypatch.setenv("WORKSHOP_ENDPOINT", f"http://127.0.0.1:{info.port}")
        lab = endpoint.connect(verbose=False)
        assert lab.backend == "environment" and lab.slm == lab.llm == "qwen2.5-coder-0.5b"
        row = bench.stream_once(lab.client, lab.slm, [{"role": "user", "content": "Say hello."}], max_tokens=8)
        assert row["text"] and 0 < row["completion_tokens"] <= 8 and row["ttft_s"] < row["e2e_s"]
        assert row["server_decode_tps"] > 0  # llama-server's own timings arrive in the stream
    finally:
        assert server.stop_server(tmp_path)
    assert server.running_server(tmp_path) is None


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

import os
import stat

import pytest

from workshop_lib.runtime import endpoint, server
from workshop_lib.errors import EndpointError, UnknownModelError

FOUNDRY_IDS = ["Phi-4-mini-instruct-generic-cpu", "qwen2.5-7b-instruct-generic-cpu", "qwen2.5-0.5b-instruct-generic-cpu"]


@pytest.mark.parametrize("given", ["127.0.0.1:5273", "http://127.0.0.1:5273", "http://127.0.0.1:5273/v1/"])
def test_base_url_is_normalized(given):
    assert endpoint.normalize_base_url(given) == "http://127.0.0.1:5273/v1"


def test_foundry_aliases_map_to_service_ids():
    assert endpoint.resolve_model("phi-4-mini", FOUNDRY_IDS) == "Phi-4-mini-instruct-generic-cpu"
    assert endpoint.resolve_model("qwen2.5-0.5b", FOUNDRY_IDS) == "qwen2.5-0.5b-instruct-generic-cpu"


def test_unknown_alias_lists_what_is_served():
    with pytest.raises(UnknownModelError) as err:
        endpoint.resolve_model("llama-9000", FOUNDRY_IDS, "http://x/v1", "slm")
    assert "Phi-4-mini-instruct-generic-cpu" in str(err.value)
    assert "WORKSHOP_SLM_MODEL" in str(err.value) and "foundry model run llama-9000" in str(err.value)


def test_role_defaults_per_backend_and_override(monkeypatch):
    monkeypatch.delenv("WORKSHOP_SLM_MODEL", raising=False)
    assert endpoint.role_model("slm", "foundry-service", FOUNDRY_IDS) == "phi-4-mini"
    assert endpoint.role_model("llm", "embedded", []) == "qwen2.5-coder-1.5b"
    assert endpoint.role_model("slm", "environment", ["some-model"]) == "some-model"
    assert endpoint.role_model("slm", "environment", []) == "phi-4-mini"  # then resolve_model says what to do
    monkeypatch.setenv("WORKSHOP_SLM_MODEL", "qwen2.5-0.5b")
    assert endpoint.role_model("slm", "foundry-service", FOUNDRY_IDS) == "qwen2.5-0.5b"


def test_environment_endpoint_wins_without_starting_anything(monkeypatch):
    monkeypatch.setattr(server, "start_server", lambda *a, **k: pytest.fail("must not start a server"))
    monkeypatch.setattr(endpoint, "foundry_service_url", lambda: pytest.fail("must not ask the foundry CLI"))
    monkeypatch.setenv("FOUNDRY_LOCAL_ENDPOINT", "http://127.0.0.1:5999")
    assert endpoint.find_endpoint() == ("foundry-service", "http://127.0.0.1:5999/v1", None)
    monkeypatch.setenv("WORKSHOP_ENDPOINT", "127.0.0.1:6000")
    assert endpoint.find_endpoint() == ("environment", "http://127.0.0.1:6000/v1", None)


def test_running_foundry_service_comes_before_embedded(monkeypatch, tmp_path):
    # A stand-in `foundry` CLI that prints what the real one prints while its service runs.
    cli = tmp_path / "foundry"
    cli.write_text("#!/bin/sh\necho 'Model management service is running on http://127.0.0.1:5273/openai/status'\n")
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for variable in endpoint.ENDPOINT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(server, "start_server", lambda *a, **k: pytest.fail("must not start a server"))
    assert endpoint.find_endpoint() == ("foundry-service", "http://127.0.0.1:5273/v1", None)


def test_down_endpoint_says_how_to_start_it(monkeypatch):
    port = server.choose_port()  # free now, so nothing answers there
    monkeypatch.setenv("WORKSHOP_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(EndpointError, match="not answering") as err:
        endpoint.connect(verbose=False)
    assert "unset WORKSHOP_ENDPOINT" in str(err.value)

"""Foundry Local for real: its web service (started by the SDK, as the `foundry` service would be) and
the in-process runtime with a model converted from a shipped GGUF."""
import importlib.util
import os
import stat
import subprocess
import sys
import time

import pytest

from workshop_lib.runtime import endpoint, server
from workshop_lib.errors import UnknownModelError

needs_converter = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None or importlib.util.find_spec("onnxruntime_genai") is None,
    reason="needs the conversion packages: pip install -r requirements-convert.txt")


@pytest.fixture
def foundry_web_service():
    """`python -m workshop_lib.runtime.foundry serve` in its own process: a real Foundry Local web service."""
    port = server.choose_port()
    proc = subprocess.Popen([sys.executable, "-m", "workshop_lib.runtime.foundry", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "web service at" in line:
            yield line.rsplit(" ", 1)[-1].strip()
            break
        if proc.poll() is not None:
            pytest.fail(f"the Foundry web service exited: {proc.stdout.read()}")
    else:
        pytest.fail("the Foundry web service did not start within 120 s")
    proc.terminate()
    proc.wait(timeout=30)


def test_attaching_to_a_service_without_the_model_says_which_command_to_type(foundry_web_service, monkeypatch):
    monkeypatch.delenv("WORKSHOP_ENDPOINT", raising=False)
    monkeypatch.setenv("FOUNDRY_LOCAL_ENDPOINT", foundry_web_service)
    assert endpoint.list_models(endpoint.normalize_base_url(foundry_web_service)) == []  # offline: nothing loaded
    with pytest.raises(UnknownModelError, match="foundry model run phi-4-mini"):
        endpoint.connect(verbose=False)


def test_the_service_url_is_read_from_the_foundry_cli(foundry_web_service, monkeypatch, tmp_path):
    cli = tmp_path / "foundry"  # prints what `foundry service status` prints while the service runs
    cli.write_text(f"#!/bin/sh\necho 'Model management service is running on {foundry_web_service}/openai/status'\n")
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for variable in endpoint.ENDPOINT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    backend, base_url, _ = endpoint.find_endpoint(start=False)
    assert backend == "foundry-service" and endpoint.list_models(base_url) == []


@needs_converter
def test_byom_model_chats_through_the_foundry_runtime():
    from workshop_lib.measure import compare
    from workshop_lib.runtime import foundry

    manager = foundry.start_manager()
    model = foundry.register_byom(manager, "qwen2.5-coder-0.5b")
    assert foundry.register_byom(manager, "qwen2.5-coder-0.5b").id == model.id  # idempotent
    assert foundry.timed_load(model) > 0 and model.is_loaded
    try:
        row = compare.chat_stream(model, [{"role": "user", "content": "Name one primary color."}], max_tokens=16)
    finally:
        model.unload()
    assert row["status"] == "ok" and row["text"].strip()
    assert 0 < row["completion_tokens"] <= 16 and row["prompt_tokens"] > 0 and not row["tokens_estimated"]
    assert 0 < row["ttft_s"] < row["e2e_s"]

"""Foundry Local for real: its web service (started by the SDK, as the `foundry` service would be) and
the in-process runtime with a model converted from a shipped GGUF."""
import dataclasses
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


@pytest.mark.server  # a real Foundry Local web service (it tries the online catalog)
def test_attaching_to_a_service_without_the_model_says_which_command_to_type(foundry_web_service, monkeypatch):
    monkeypatch.delenv("WORKSHOP_ENDPOINT", raising=False)
    monkeypatch.setenv("FOUNDRY_LOCAL_ENDPOINT", foundry_web_service)
    assert endpoint.list_models(endpoint.normalize_base_url(foundry_web_service)) == []  # offline: nothing loaded
    with pytest.raises(UnknownModelError, match="foundry model run "):
        endpoint.connect(verbose=False)


def fake_foundry_cli(folder, output: str) -> None:
    """A `foundry` command that prints ``output``, written in Python so it runs on every OS."""
    script = folder / "foundry_cli.py"
    script.write_text(f"print({output!r})\n")
    posix = folder / "foundry"
    posix.write_text(f"#!{sys.executable}\n" + script.read_text())
    posix.chmod(posix.stat().st_mode | stat.S_IEXEC)
    (folder / "foundry.cmd").write_text(f'@"{sys.executable}" "{script}" %*\r\n')  # what Windows runs


@pytest.mark.server
def test_the_service_url_is_read_from_the_foundry_cli(foundry_web_service, monkeypatch, tmp_path):
    # prints what `foundry service status` prints while the service runs
    fake_foundry_cli(tmp_path, f"Model management service is running on {foundry_web_service}/openai/status")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for variable in endpoint.ENDPOINT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    backend, base_url, _ = endpoint.find_endpoint(start=False)
    assert backend == "foundry-service" and endpoint.list_models(base_url) == []


def test_the_sdk_reuses_the_models_the_foundry_cli_downloaded(monkeypatch, tmp_path):
    from workshop_lib.runtime import foundry

    cli_cache = tmp_path / "cli-cache"
    cli_cache.mkdir()
    fake_foundry_cli(tmp_path, f"Cache directory path: {cli_cache}")  # like `foundry cache location`
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("WORKSHOP_FOUNDRY_CACHE_DIR", raising=False)
    assert foundry.model_cache_dir()[0] == cli_cache
    monkeypatch.setenv("WORKSHOP_FOUNDRY_CACHE_DIR", str(tmp_path / "mine"))
    assert foundry.model_cache_dir() == (tmp_path / "mine", "set by WORKSHOP_FOUNDRY_CACHE_DIR")


def test_byom_says_what_is_missing_when_the_gguf_packages_are_absent(fake_model, monkeypatch, tmp_path):
    from workshop_lib.runtime import convert, foundry

    spec = fake_model()
    assert foundry.byom_missing("tiny") == ""  # its part packages are installed
    absent = dataclasses.replace(spec.parts[0], module="not_installed_part_pkg", package="not-installed-part-pkg==1")
    monkeypatch.setattr(foundry.models, "get_spec", lambda alias: dataclasses.replace(spec, parts=(absent,)))
    assert "not installed" in foundry.byom_missing("tiny") and "pip install" in foundry.byom_missing("tiny")
    assert "python lab.py setup" in foundry.byom_missing("tiny"), "a Foundry-only learner needs the setup command"
    (convert.onnx_dir("tiny")).mkdir(parents=True)
    (convert.onnx_dir("tiny") / "genai_config.json").write_text("{}")
    assert foundry.byom_missing("tiny") == ""  # already converted: the GGUF is not needed


@pytest.mark.server  # the assembled GGUF, converted (minutes) and run
@pytest.mark.install
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


# What each CLI generation prints (0.8: Foundry Local's own output; 0.10: the status table as projects
# that parse it quote it). A word the generation does not know gets System.CommandLine's error.
STATUS_0_8 = "🟢 Model management service is running on http://127.0.0.1:5273/openai/status"
STOPPED_0_8 = "🔴 Model management service is not running!"
STATUS_0_10 = "Status     Ready\nPID        4242\nWeb URLs   http://127.0.0.1:53494\nUptime     00:03:12"
STOPPED_0_10 = "Status     Not running\nWeb URLs   http://127.0.0.1:53494"


def versioned_foundry_cli(folder, group: str, status: str) -> None:
    """A `foundry` that knows only ``group`` (`service` or `server`) and prints ``status`` for
    `foundry <group> status`; any other command fails as the real CLI does for an unknown word."""
    fake_foundry_cli(folder, "")
    script = folder / "foundry_cli.py"
    script.write_text(
        "import sys\n"
        f"if sys.argv[1:] == [{group!r}, 'status']:\n    print({status!r})\n"
        "else:\n    print(f\"Unrecognized command or argument '{sys.argv[1]}'.\", file=sys.stderr)\n"
        "    sys.exit(1)\n")
    posix = folder / "foundry"
    posix.write_text(f"#!{sys.executable}\n" + script.read_text())


@pytest.mark.parametrize("group, status, url", [
    ("service", STATUS_0_8, "http://127.0.0.1:5273"), ("server", STATUS_0_10, "http://127.0.0.1:53494"),
    ("service", STOPPED_0_8, None), ("server", STOPPED_0_10, None)])
def test_both_cli_generations_report_the_running_service(group, status, url, monkeypatch, tmp_path):
    versioned_foundry_cli(tmp_path, group, status)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert endpoint.foundry_service_url() == url


def test_a_skip_message_says_what_was_skipped_and_how_to_run_it():
    from workshop_lib.runtime import foundry

    said = foundry.skipped("the runtime comparison", "the GGUF on a llama.cpp server")
    assert said.startswith("Skipped the runtime comparison: it needs the GGUF on a llama.cpp server")
    for command in ("python lab.py setup", "foundry service stop", "foundry server stop", "FOUNDRY_LOCAL_ENDPOINT"):
        assert command in said


def test_a_registration_whose_folder_is_gone_is_registered_again(monkeypatch, tmp_path):
    """A LOCAL registration outlives the cache folder it points at (a learner moved or deleted the cache,
    or used another WORKSHOP_CACHE_DIR): loading it then fails with "model not found at path"."""
    pytest.importorskip("foundry_local_sdk")
    from types import SimpleNamespace

    from workshop_lib.runtime import convert, foundry
    stale = SimpleNamespace(id="tiny-byom:1", is_cached=False)
    fresh = SimpleNamespace(id="tiny-byom:1", is_cached=True)
    calls = []
    local = SimpleNamespace(get_model=lambda name: None if "unregister" in calls else stale,
                            unregister_model=lambda ident: calls.append("unregister"),
                            register_model=lambda folder, ident, info: calls.append(("register", folder)) or fresh)
    manager = SimpleNamespace(get_catalog=lambda kind: local)
    monkeypatch.setattr(convert, "ensure_onnx_model", lambda alias: tmp_path)
    assert foundry.register_byom(manager, "tiny") is fresh
    assert calls == ["unregister", ("register", tmp_path)]

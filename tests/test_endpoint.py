import os
import stat
import sys

import pytest

from workshop_lib.errors import EndpointError, UnknownModelError, WorkshopError
from workshop_lib.runtime import endpoint, server

# Ids as a Foundry Local service reports them (catalog CPU variants, with their version).
FOUNDRY_IDS = ["Phi-4-mini-instruct-generic-cpu:5", "qwen2.5-7b-instruct-generic-cpu:4",
               "qwen2.5-0.5b-instruct-generic-cpu:4", "qwen2.5-coder-1.5b-instruct-generic-cpu:4"]


@pytest.fixture(autouse=True)
def no_settings(monkeypatch):
    for variable in (*endpoint.ENDPOINT_VARIABLES, "WORKSHOP_SLM_MODEL", "WORKSHOP_LLM_MODEL",
                     "WORKSHOP_TIMEOUT", "WORKSHOP_API_KEY"):
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize("given", ["127.0.0.1:5273", "http://127.0.0.1:5273", "http://127.0.0.1:5273/v1/",
                                   " HTTP://127.0.0.1:5273/v1 "])
def test_base_url_is_normalized(given):
    assert endpoint.normalize_base_url(given).lower() == "http://127.0.0.1:5273/v1"


@pytest.mark.parametrize("given", ["htp:/bad url", "htp://127.0.0.1:5273", "127.0.0.1:port", "127.0.0.1:",
                                   "http://", "http://127.0.0.1:99999"])
def test_malformed_endpoint_setting_names_the_setting_and_the_fix(monkeypatch, given):
    monkeypatch.setenv("WORKSHOP_ENDPOINT", given)
    with pytest.raises(EndpointError) as err:
        endpoint.connect(verbose=False)
    assert "WORKSHOP_ENDPOINT" in err.value.problem and repr(given.strip()) in err.value.problem
    assert "http://127.0.0.1:5273" in err.value.fix and "unset it" in err.value.fix


def test_non_numeric_timeout_names_the_setting(monkeypatch):
    monkeypatch.setattr(endpoint, "find_endpoint", lambda: pytest.fail("the timeout is checked first"))
    monkeypatch.setenv("WORKSHOP_TIMEOUT", "soon")
    with pytest.raises(WorkshopError) as err:
        endpoint.connect(verbose=False)
    assert "WORKSHOP_TIMEOUT" in err.value.problem and "'soon'" in err.value.problem
    assert "WORKSHOP_TIMEOUT" in err.value.fix


def test_foundry_aliases_map_to_service_ids():
    assert endpoint.resolve_model("phi-4-mini", FOUNDRY_IDS) == "Phi-4-mini-instruct-generic-cpu:5"
    assert endpoint.resolve_model("qwen2.5-0.5b", FOUNDRY_IDS) == "qwen2.5-0.5b-instruct-generic-cpu:4"
    assert endpoint.resolve_model("qwen2.5-coder-1.5b", FOUNDRY_IDS) == "qwen2.5-coder-1.5b-instruct-generic-cpu:4"


def test_unknown_alias_lists_what_is_served():
    with pytest.raises(UnknownModelError) as err:
        endpoint.resolve_model("llama-9000", FOUNDRY_IDS, "http://x/v1", "slm")
    assert "Phi-4-mini-instruct-generic-cpu:5" in str(err.value)
    assert "WORKSHOP_SLM_MODEL" in str(err.value) and "foundry model run llama-9000" in str(err.value)


def test_foundry_roles_prefer_what_the_service_serves(monkeypatch):
    # The first preferred model the service serves wins: here qwen2.5-0.5b (slm), qwen2.5-coder-1.5b (llm).
    assert endpoint.role_model("slm", "foundry-service", FOUNDRY_IDS) == "qwen2.5-0.5b"
    assert endpoint.role_model("llm", "foundry-service", FOUNDRY_IDS) == "qwen2.5-coder-1.5b"
    assert endpoint.role_model("llm", "foundry-service", FOUNDRY_IDS[:1]) == "phi-4-mini"
    assert endpoint.role_model("slm", "foundry-service", []) == "qwen2.5-coder-0.5b"  # the README's first choice
    assert endpoint.role_model("llm", "embedded", []) == "qwen2.5-coder-1.5b"
    monkeypatch.setenv("WORKSHOP_SLM_MODEL", "qwen2.5-7b")
    assert endpoint.role_model("slm", "foundry-service", FOUNDRY_IDS) == "qwen2.5-7b"


def test_an_unknown_server_gets_its_own_models_per_role():
    assert endpoint.role_model("slm", "environment", ["some-model"]) == "some-model"
    models, missing = endpoint.resolve_roles("environment", ["a-model", "b-model"], "http://x/v1")
    assert models == {"slm": "a-model", "llm": "b-model"} and not missing


def test_one_loaded_model_is_enough_and_the_second_role_says_how_to_load_it(capsys):
    # Only `foundry model run qwen2.5-0.5b` was run: connect() works for one-model lessons.
    served = ["qwen2.5-0.5b-instruct-generic-cpu:4"]
    models, missing = endpoint.resolve_roles("foundry-service", served, "http://127.0.0.1:9/v1")
    assert models == {"slm": "qwen2.5-0.5b-instruct-generic-cpu:4", "llm": None} and list(missing) == ["llm"]
    lab = endpoint.Connection(None, "foundry-service", "http://127.0.0.1:9/v1", models, [], None, missing)
    assert lab.slm == "qwen2.5-0.5b-instruct-generic-cpu:4"
    assert not lab.has_role("llm", "comparing the two models")
    said = capsys.readouterr().out
    assert said.count("\n") == 1 and said.startswith("Skipped: comparing the two models needs the llm model")
    assert "foundry model run qwen2.5-coder-1.5b" in said
    with pytest.raises(UnknownModelError, match="foundry model run qwen2.5-coder-1.5b"):
        lab.llm
    assert "llm = not served here" in lab.describe()


def test_no_usable_model_at_all_is_an_error():
    with pytest.raises(UnknownModelError, match="no model at all"):
        endpoint.resolve_roles("foundry-service", [], "http://127.0.0.1:9/v1")


def test_a_role_named_in_a_setting_must_exist(monkeypatch):
    monkeypatch.setenv("WORKSHOP_LLM_MODEL", "qwen2.5-14b")
    with pytest.raises(UnknownModelError, match="WORKSHOP_LLM_MODEL"):
        endpoint.resolve_roles("foundry-service", FOUNDRY_IDS, "http://127.0.0.1:9/v1")


def test_environment_endpoint_wins_without_starting_anything(monkeypatch):
    monkeypatch.setattr(server, "start_server", lambda *a, **k: pytest.fail("must not start a server"))
    monkeypatch.setattr(endpoint, "foundry_service_url", lambda: pytest.fail("must not ask the foundry CLI"))
    monkeypatch.setenv("FOUNDRY_LOCAL_ENDPOINT", "http://127.0.0.1:5999")
    assert endpoint.find_endpoint() == ("foundry-service", "http://127.0.0.1:5999/v1", None)
    monkeypatch.setenv("WORKSHOP_ENDPOINT", "127.0.0.1:6000")
    assert endpoint.find_endpoint() == ("environment", "http://127.0.0.1:6000/v1", None)
    monkeypatch.setenv("WORKSHOP_API_KEY", "k")
    assert endpoint.find_endpoint() == ("environment", "http://127.0.0.1:6000/v1", "k")


def stand_in_foundry_cli(folder, output: str) -> None:
    """A `foundry` command that prints what the real one prints; a Python script, so it runs on
    Windows (through a .cmd file) as on Linux and macOS."""
    script = folder / "foundry_cli.py"
    script.write_text(f"print({output!r})\n")
    if sys.platform == "win32":
        (folder / "foundry.cmd").write_text(f'@"{sys.executable}" "{script}" %*\n')
    else:
        cli = folder / "foundry"
        cli.write_text(f"#!{sys.executable}\n" + script.read_text())
        cli.chmod(cli.stat().st_mode | stat.S_IEXEC)


def test_running_foundry_service_comes_before_embedded(monkeypatch, tmp_path):
    stand_in_foundry_cli(tmp_path, "Model management service is running on http://127.0.0.1:5273/openai/status")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(server, "start_server", lambda *a, **k: pytest.fail("must not start a server"))
    assert endpoint.find_endpoint() == ("foundry-service", "http://127.0.0.1:5273/v1", None)


def test_a_stopped_foundry_service_is_not_chosen(monkeypatch, tmp_path):
    stand_in_foundry_cli(tmp_path, "Model management service is not running!")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert endpoint.foundry_service_url() is None


def test_down_endpoint_says_how_to_start_it(monkeypatch):
    port = server.choose_port()  # free now, so nothing answers there
    monkeypatch.setenv("WORKSHOP_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(EndpointError, match="not answering") as err:
        endpoint.connect(verbose=False)
    assert "unset WORKSHOP_ENDPOINT" in str(err.value)


def test_a_downloaded_second_model_is_loaded_not_downloaded_again(monkeypatch):
    # What a Foundry Local service's GET /openai/models lists: the models in its cache.
    cached = ["qwen2.5-coder-0.5b-instruct-generic-cpu:4", "qwen2.5-1.5b-instruct-generic-cpu:4"]
    asked = []
    monkeypatch.setattr(server, "get_json", lambda url, *a, **k: asked.append(url) or cached)
    models, missing = endpoint.resolve_roles("foundry-service", cached[:1], "http://127.0.0.1:5273/v1")
    assert asked == ["http://127.0.0.1:5273/openai/models"]
    assert "qwen2.5-1.5b is downloaded but not loaded" in missing["llm"].problem
    assert missing["llm"].fix.startswith("Load it with `foundry model load qwen2.5-1.5b`")

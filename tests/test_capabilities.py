"""Capability probing against the real embedded llama-server (the compat server: test_compat_server.py)."""
import dataclasses
import time

import pytest
from conftest import needs_server

from workshop_lib.errors import WorkshopError
from workshop_lib.runtime import capabilities, endpoint


@pytest.fixture(scope="module")
def lab():
    """The embedded server (its tests carry needs_server: without the build they skip, nothing is built)."""
    with pytest.MonkeyPatch.context() as mp:
        for variable in endpoint.ENDPOINT_VARIABLES:
            mp.delenv(variable, raising=False)
        mp.setattr(endpoint, "foundry_service_url", lambda: None)  # this test is about the embedded server
        yield endpoint.connect(verbose=False)


def test_every_capability_has_a_meaning():
    assert capabilities.names() == list(capabilities.MEANING)
    assert all(isinstance(v, bool) for v in dataclasses.asdict(capabilities.Capabilities()).values())


@needs_server
def test_the_embedded_server_offers_every_extra(lab):
    assert lab.backend == "embedded"
    assert all(dataclasses.asdict(lab.capabilities).values()), lab.capabilities


@needs_server
def test_probe_is_asked_once_per_server(lab):
    first = capabilities.probe(lab.base_url, [lab.slm], lab.api_key, lab.backend)
    start = time.perf_counter()
    assert capabilities.probe(lab.base_url, [lab.slm], lab.api_key, lab.backend) is first
    assert time.perf_counter() - start < 0.01
    assert first.seconds > 0


@needs_server
def test_token_counter_uses_the_models_own_tokenizer(lab):
    count = lab.token_counter(lab.slm)
    assert count("Hello world") == 2  # Qwen2.5: "Hello", " world"; no BOS added
    answer = lab.client.chat.completions.create(model=lab.slm, max_tokens=12, temperature=0,
                                                messages=[{"role": "user", "content": "Count from 1 to 20."}])
    # what the server reports it generated, counted again from the text (a stop token adds none)
    assert abs(count(answer.choices[0].message.content) - answer.usage.completion_tokens) <= 1


@needs_server
def test_supports_is_silent_when_the_server_has_it(lab, capsys):
    assert lab.supports("timings", "comparing with the server's own timings")
    assert capsys.readouterr().out == ""


def test_supports_says_in_one_sentence_what_is_skipped(capsys):
    lab = endpoint.Connection(None, "environment", "http://127.0.0.1:9/v1", {"slm": "m", "llm": "m"}, ["m"])
    capabilities._PROBES[lab.base_url] = capabilities.Probe(capabilities.Capabilities(completions=True))
    try:
        assert lab.supports("completions")
        assert not lab.supports("timings", "comparing with the server's own timings")
        assert lab.token_counter("m") is None
    finally:
        del capabilities._PROBES[lab.base_url]
    said = capsys.readouterr().out
    assert said == ("Skipped: comparing with the server's own timings needs `timings` (the server's own "
                    "measurement of its prefill and decode speed), which this server (environment at "
                    "http://127.0.0.1:9/v1) does not offer. To run it on the embedded llama.cpp server: unset "
                    "WORKSHOP_ENDPOINT (and FOUNDRY_LOCAL_ENDPOINT), run `python lab.py setup`, restart the kernel "
                    "and run this notebook again.\n")
    with pytest.raises(WorkshopError, match="streamed_usage"):
        lab.supports("timing")


def test_a_skip_on_foundry_says_how_to_run_the_part(capsys):
    lab = endpoint.Connection(None, "foundry-service", "http://127.0.0.1:9/v1", {"slm": "m", "llm": "m"}, ["m"])
    capabilities._PROBES[lab.base_url] = capabilities.Probe(capabilities.Capabilities())
    try:
        assert not lab.supports("timings", "comparing with the server's own timings")
    finally:
        del capabilities._PROBES[lab.base_url]
    said = capsys.readouterr().out
    assert said.count("\n") == 1 and "does not offer. To run it: unset FOUNDRY_LOCAL_ENDPOINT" in said
    assert "foundry server stop" in said  # both CLI generations


# ---------------------------------------------------------------- structured output, no server

def test_each_structured_style_spells_the_schema_its_servers_way():
    schema = {"type": "object"}
    assert capabilities.response_format("json_schema", schema, "r") == {
        "type": "json_schema", "json_schema": {"name": "r", "schema": schema}}  # llama.cpp, OpenAI
    assert capabilities.response_format("json_schema_text", schema) == {
        "type": "json_schema", "json_schema": '{"type": "object"}'}  # Foundry Local: the schema as a string
    assert capabilities.response_format("json_object", schema) == {"type": "json_object", "schema": schema}
    assert capabilities.response_format("", schema) is None
    with pytest.raises(ValueError):
        capabilities.response_format("grammar", schema)


def replying(contents: dict):
    """A stand-in for ``_post``: each style's request answers ``contents[style]`` (missing: an error)."""
    asked = []

    def post(url, body, api_key, timeout=30):
        style = next(s for s in capabilities.STRUCTURED_STYLES
                     if body["response_format"] == capabilities.response_format(s, capabilities.PROBE_SCHEMA))
        asked.append(style)
        if style not in contents:
            return {}  # what _post returns for a 4xx
        return {"choices": [{"message": {"content": contents[style]}}]}
    return post, asked


def test_the_probe_takes_the_first_style_whose_reply_follows_the_schema(monkeypatch):
    post, asked = replying({"json_schema": "Ready!", "json_object": '{"probe": "constrained-7f3a"}'})
    monkeypatch.setattr(capabilities, "_post", post)
    assert capabilities._structured_style("http://x", "m", None) == "json_object"
    assert asked == ["json_schema", "json_schema_text", "json_object"]  # accepting and ignoring is not support


def test_a_server_that_follows_no_schema_has_no_structured_output(monkeypatch):
    post, _ = replying({"json_schema": '{"probe": "something else"}', "json_object": "{"})
    monkeypatch.setattr(capabilities, "_post", post)
    assert capabilities._structured_style("http://x", "m", None) == ""


@needs_server
def test_the_embedded_llama_server_constrains_to_a_nested_json_schema(lab):
    assert capabilities.structured_style(lab) == "json_schema"


def test_how_to_run_names_the_steps_for_each_backend_and_nothing_on_the_embedded_one():
    def connection(backend):
        return endpoint.Connection(None, backend, "http://127.0.0.1:9/v1", {"slm": "m", "llm": "m"}, ["m"])
    assert "foundry server stop" in connection("foundry-service").how_to_run()
    assert "unset WORKSHOP_ENDPOINT" in connection("environment").how_to_run()
    assert connection("embedded").how_to_run() == ""

"""Lesson 03's prompt-length sweep: prompts of the asked size, and where TTFT leaves its straight line."""
from types import SimpleNamespace

import pandas as pd
import pytest

from conftest import needs_server
from workshop_lib.measure import prefill


def test_filler_prompts_grow_with_the_words_asked_and_are_reproducible():
    short, long = prefill.filler_prompt(64), prefill.filler_prompt(640)
    words = lambda p: len(p[1]["content"].split("\n\n")[0].split())  # noqa: E731
    assert words(short) == 64 and words(long) == 640
    assert prefill.filler_prompt(64, seed=1) == prefill.filler_prompt(64, seed=1) != prefill.filler_prompt(64, seed=2)


def table(ttfts, lengths=(64, 256, 512, 1024, 2048, 4096)):
    return pd.DataFrame({"prompt_tokens": lengths, "ttft_s": ttfts})


def test_a_ttft_that_grows_faster_than_the_line_is_found_where_it_departs():
    linear = [0.1 + 0.004 * n for n in (64, 256, 512, 1024)]
    fit = prefill.linear_until(table(linear + [0.1 + 0.004 * 2048 * 1.5, 0.1 + 0.004 * 4096 * 2.5]))
    assert fit["departs_at"] == 2048 and fit["linear_up_to"] == 1024
    assert abs(fit["per_token_s"] - 0.004) < 1e-6 and abs(fit["fixed_s"] - 0.1) < 1e-6


def test_a_straight_ttft_never_departs():
    fit = prefill.linear_until(table([0.1 + 0.004 * n for n in (64, 256, 512, 1024, 2048, 4096)]))
    assert fit["departs_at"] is None and fit["linear_up_to"] == 4096


def test_too_few_lengths_give_no_fit_rather_than_a_guess():
    assert prefill.linear_until(table([0.3], lengths=(64,)))["per_token_s"] is None


def test_a_server_without_token_counts_gives_no_fit_and_no_prefill_speed():
    assert prefill.linear_until(pd.DataFrame({"words": [64, 256], "ttft_s": [0.3, 0.9]}))["per_token_s"] is None


def sweep_table():
    return pd.DataFrame({"words": [64, 512], "prompt_tokens": [90.0, 610.5], "ttft_s": [0.3, 2.0],
                         "decode_tps": [30.0, 24.0]})


def test_llama_bench_runs_at_each_prompts_depth_beside_the_embedded_server(monkeypatch):
    asked = []

    def fake_bench(path, threads, n_prompt, n_gen, repetitions, depth):
        asked.append((n_prompt, n_gen, depth))
        return {"tg_tps": 40.0 - depth / 100, "tg_std": 0.5, "depth": depth}
    monkeypatch.setattr(prefill.llamacpp, "llama_bench", fake_bench)
    lab = SimpleNamespace(backend="embedded")
    out = prefill.with_bench_depths(lab, "qwen2.5-coder-0.5b", sweep_table(), n_gen=16)
    assert asked == [(0, 16, 90), (0, 16, 610)]  # the prompt's depth, rounded; decode only
    assert list(out["bench_decode_tps"]) == [39.1, 33.9]
    assert list(out["server/llama-bench"].round(3)) == [round(30 / 39.1, 3), round(24 / 33.9, 3)]


def test_no_llama_bench_where_it_cannot_read_the_servers_model_file(monkeypatch):
    monkeypatch.setattr(prefill.llamacpp, "llama_bench", lambda *a, **k: pytest.fail("llama-bench was run"))
    for lab, model in ((SimpleNamespace(backend="foundry-service"), "qwen2.5-coder-0.5b"),
                       (SimpleNamespace(backend="embedded"), "someone-elses-model")):
        assert "bench_decode_tps" not in prefill.with_bench_depths(lab, model, sweep_table())
    no_counts = sweep_table().assign(prompt_tokens=[None, None])
    assert "bench_decode_tps" not in prefill.with_bench_depths(SimpleNamespace(backend="embedded"), "qwen2.5-coder-0.5b", no_counts)


@needs_server
def test_llama_bench_reports_the_depth_it_was_asked_to_run_at():
    from workshop_lib.runtime import models
    deep = prefill.bench_depths(models.get_spec("qwen2.5-coder-0.5b").path, threads=2, depths=[0, 256], n_gen=4)
    assert list(deep["prompt_tokens"]) == [0, 256] and (deep["bench_decode_tps"] > 0).all()

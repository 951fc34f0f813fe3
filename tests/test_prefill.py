"""Lesson 03's prompt-length sweep: prompts of the asked size, and where TTFT leaves its straight line."""
import pandas as pd

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

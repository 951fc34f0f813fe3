"""Lesson 03's check that the client reading a stream does not slow the server: streamed vs quiet requests,
each timed by the server itself."""
import itertools
from types import SimpleNamespace

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from workshop_lib.measure import bench


def chunk(content=None, timings=None, usage=None):
    data = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [] if content is None else [{"index": 0, "delta": {"content": content}}]}
    if usage:
        data["usage"] = usage
    if timings:
        data["timings"] = timings
    return ChatCompletionChunk.model_validate(data)


class ServerWithTimings:
    """A client whose replies carry llama-server's ``timings``: streamed ones at ``streamed`` tokens/s,
    the others at ``quiet``, one value per request in turn."""

    def __init__(self, streamed, quiet):
        self.streamed, self.quiet = iter(streamed), iter(quiet)
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def create(self, stream=False, **kwargs):
        if stream:
            usage = {"completion_tokens": 2, "prompt_tokens": 5, "total_tokens": 7}
            return iter([chunk("a"), chunk("b"), chunk(None, {"predicted_per_second": next(self.streamed)}, usage)])
        return ChatCompletion.model_validate({
            "id": "r", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "ab"}}],
            "timings": {"predicted_per_second": next(self.quiet)}})


def fake_lab(client, timings=True):
    supports = lambda name, purpose="": timings or name != "timings"  # noqa: E731
    return SimpleNamespace(client=client, models={"slm": "m"}, supports=supports, token_counter=lambda m: None)


def test_the_ratio_is_the_median_of_each_pairs_ratio():
    # the warm-up is streamed too; then pairs (40 vs 50), (30 vs 30), (45 vs 50): ratios 0.8, 1.0, 0.9
    client = ServerWithTimings(streamed=[99, 40, 30, 45], quiet=[50, 30, 50])
    result = bench.client_interference(fake_lab(client), "slm", n_gen=2, rounds=3)
    assert result["pairs"] == 3 and result["streamed/quiet"] == pytest.approx(0.9)
    assert result["server_tps_streamed"] == 40 and result["server_tps_quiet"] == 50


def test_a_server_without_timings_is_skipped_with_nothing_measured():
    client = ServerWithTimings(streamed=itertools.repeat(1), quiet=itertools.repeat(1))
    assert bench.client_interference(fake_lab(client, timings=False), "slm") == {}


def test_the_result_reports_the_pairs_spread_next_to_the_median():
    client = ServerWithTimings(streamed=[99, 40, 30, 45], quiet=[50, 30, 50])
    result = bench.client_interference(fake_lab(client), "slm", n_gen=2, rounds=3)
    assert result["ratio_low"] == pytest.approx(0.8) and result["ratio_high"] == pytest.approx(1.0)
    assert result["verdict"].startswith("inconclusive")  # 0.8 is outside 1 +- 10 %, 1.0 inside: no one side


@pytest.mark.parametrize("ratios, verdict", [
    ([0.3], "inconclusive"),  # one pair, however far from 1, says nothing on a noisy machine
    ([0.3, 4.7, 1.0], "inconclusive"),  # the spread seen on a loaded machine
    ([0.7, 0.8, 0.75], "the streaming client slows the server"),
    ([0.97, 1.02, 1.05], "no measurable cost"),
])
def test_a_verdict_needs_several_pairs_on_one_side(ratios, verdict):
    said = bench.interference_verdict(ratios)
    assert said.startswith(verdict) and f"{min(ratios):.2f} to {max(ratios):.2f}" in said, said

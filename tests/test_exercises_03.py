"""Lesson 03's judges reject plausible wrong answers with a useful sentence and accept the right ones.
No server: a scripted client streams chunks at known times."""
import time
from types import SimpleNamespace

import pytest
from openai.types.chat import ChatCompletionChunk

from workshop_lib.exercises import lesson03

FIRST_TEXT_S, GAP_S, TOKENS = 0.25, 0.02, 8


def chunk(content=None, role=None, usage=None):
    data = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": []}
    if content is not None or role:
        data["choices"] = [{"index": 0, "delta": {"content": content, "role": role}}]
    if usage:
        data["usage"] = usage
    return ChatCompletionChunk.model_validate(data)


class ScriptedServer:
    """A role-only chunk at once, the first text after FIRST_TEXT_S, then one token every GAP_S, then usage."""

    def __init__(self):
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def create(self, stream=False, **kwargs):
        assert stream, "these tests only stream"

        def chunks():
            yield chunk(role="assistant", content="")
            time.sleep(FIRST_TEXT_S)
            for i in range(TOKENS):
                if i:
                    time.sleep(GAP_S)
                yield chunk(f" {i}")
            yield chunk(usage={"completion_tokens": TOKENS, "prompt_tokens": 30, "total_tokens": 38})
        return chunks()


def timed(tpot_includes_ttft=False, ttft_at_any_chunk=False, ttft_at_end=False, tps_of_e2e=False, end_at_last=False):
    """The reference solution's shape, with one of the usual mistakes switched on."""
    def timed_request(client, model, messages, max_tokens):
        start, arrivals, usage = time.perf_counter(), [], None
        stream = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, stream=True,
                                                stream_options={"include_usage": True})
        for c in stream:
            usage = c.usage or usage
            if c.choices and (c.choices[0].delta.content or ttft_at_any_chunk):
                arrivals.append(time.perf_counter())
        end = arrivals[-1] if end_at_last else time.perf_counter()
        n = usage.completion_tokens
        ttft = (end - start) if ttft_at_end else arrivals[0] - start
        tpot = (end - start) / n if tpot_includes_ttft else (end - arrivals[0]) / (n - 1)
        return {"ttft_s": ttft, "tpot_s": tpot, "decode_tps": n / (end - start) if tps_of_e2e else 1 / tpot}
    return timed_request


def judge():
    return lesson03.timed_request_judge(ScriptedServer(), "m", [{"role": "user", "content": "count"}], max_tokens=8)


@pytest.mark.parametrize("variant", [{}, {"end_at_last": True}], ids=["end-of-stream", "last-text-chunk"])
def test_a_right_timed_request_passes_with_either_end_of_the_stream(variant):
    assert judge()(timed(**variant)) is None


@pytest.mark.parametrize("mistake, words", [
    ({"tpot_includes_ttft": True}, "includes the wait for the first token"),
    ({"ttft_at_end": True}, "whole request's time"),
    ({"ttft_at_any_chunk": True}, "first one carries only the role"),
    ({"tps_of_e2e": True}, "does not match your TPOT"),
])
def test_a_usual_mistake_is_named(mistake, words):
    message = judge()(timed(**mistake))
    assert message and words in message, message


def test_a_non_streamed_or_missing_request_and_a_bad_return_are_explained():
    assert "sent no request" in judge()(lambda client, model, messages, max_tokens: {"ttft_s": 1})
    bad_return = lambda c, m, msgs, n: list(c.chat.completions.create(model=m, messages=msgs, stream=True))  # noqa: E731
    assert "return a dict" in judge()(bad_return)


def test_the_placeholder_is_left_to_the_framework_as_not_attempted():
    def placeholder(client, model, messages, max_tokens):
        raise NotImplementedError("write this")
    with pytest.raises(NotImplementedError):
        judge()(placeholder)


def test_the_bandwidth_judge_names_the_unit_mistakes():
    check = lesson03.bandwidth_judge(model_bytes=0.5e9, decode_tps=40)  # 20 GB/s
    assert check(20.1) is None
    assert "10^9" in check(20e9) and "bits" in check(160) and "multiply" in check(0.5)
    assert "file's size" in check(3.0)

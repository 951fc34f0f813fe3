"""Judges for lesson 03's exercises (03_benchmarking). Each returns None when the answer is right, or a
sentence saying what is wrong and where to look.

- ``03-timed-request``: the learner's function times one streamed request. The judge hands it a client
  that passes every call to the real server and notes, on its side, when the request was sent and when
  each chunk was handed over; the expected figures come from those notes through ``bench.timing_row``
  (the library's formulas), so the learner's clock is checked against the same stream, not against a
  second, noisier request.
- ``03-bandwidth``: bytes read per second while decoding, from the library's file size and decode speed.
"""
import time
from types import SimpleNamespace

from ..measure import bench, machine

TIMED_KEYS = ("ttft_s", "tpot_s", "decode_tps")


class StreamNotes:
    """A client that forwards ``chat.completions.create`` to ``client`` and notes the stream's timing:
    ``start`` just before the request goes out, ``arrivals`` when each chunk with text is handed on,
    ``end`` when the stream is exhausted, and the ``usage`` it carried."""

    def __init__(self, client):
        self.client, self.start, self.end, self.arrivals, self.usage, self.streamed = client, None, None, [], None, None
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def create(self, **kwargs):
        self.streamed, self.start = bool(kwargs.get("stream")), time.perf_counter()
        reply = self.client.chat.completions.create(**kwargs)
        return self._noted(reply) if self.streamed else reply

    def _noted(self, stream):
        for chunk in stream:
            self.usage = chunk.usage or self.usage
            if chunk.choices and chunk.choices[0].delta.content:
                self.arrivals.append(time.perf_counter())
            yield chunk
        self.end = time.perf_counter()

    def expected(self) -> list:
        """The library's row for this stream, with TPOT measured to the stream's end and, as many people
        write it, to the last text chunk: both are accepted."""
        row = bench.timing_row("m", self.start, self.arrivals, self.end or self.arrivals[-1], self.usage, None, "", None)
        last = bench.timing_row("m", self.start, self.arrivals, self.arrivals[-1], self.usage, None, "", None)
        return [row, last]


def timed_request_judge(client, model: str, messages: list, max_tokens: int = 32, rel: float = 0.1):
    """A judge that calls ``timed_request(client, model, messages, max_tokens)`` on the real server and
    compares its TTFT, TPOT and decode speed with the library's reading of the same stream."""
    def judge(timed_request):
        notes = StreamNotes(client)
        try:
            got = timed_request(notes, model, messages, max_tokens)
        except NotImplementedError:
            raise
        except Exception as exc:  # a learner's bug: say which, do not crash the lesson
            return f"your function raised {type(exc).__name__}: {exc}"
        return judge_timings(got, notes, rel)
    return judge


def judge_timings(got, notes: StreamNotes, rel: float = 0.1):
    """Compare a learner's ``{"ttft_s", "tpot_s", "decode_tps"}`` with the notes of the same stream."""
    if notes.start is None:
        return "your function sent no request: call client.chat.completions.create(...) with the client it was given"
    if not notes.streamed:
        return "the request was not streamed: pass stream=True, or there is no first token to time"
    if not isinstance(got, dict) or any(got.get(k) is None for k in TIMED_KEYS):
        return f"return a dict with {', '.join(TIMED_KEYS)} (seconds, seconds per token, tokens per second)"
    if len(notes.arrivals) < 2:
        return "the answer had fewer than two text chunks: ask for more tokens (max_tokens) and try again"
    full, to_last = notes.expected()
    e2e = (notes.end or notes.arrivals[-1]) - notes.start
    problem = _judge_ttft(got["ttft_s"], full["ttft_s"], e2e, rel) or _judge_tpot(got, full, to_last, e2e, rel)
    if problem:
        return problem
    if abs(got["decode_tps"] * got["tpot_s"] - 1) > 0.02:
        return "decode_tps does not match your TPOT: it is the speed of the same tokens, per second instead of per token"
    return None


def _close(value, expected, rel, floor=0.005):
    return abs(value - expected) <= max(rel * abs(expected), floor)


def _judge_ttft(ttft, expected, e2e, rel):
    if _close(ttft, expected, rel, floor=0.02):
        return None
    if _close(ttft, e2e, rel):
        return (f"your TTFT ({ttft:.3f} s) is the whole request's time ({e2e:.3f} s): stop that clock at the first "
                "chunk whose delta carries text")
    if ttft < expected:
        return (f"your TTFT ({ttft:.3f} s) is shorter than the wait for the first text ({expected:.3f} s): start the "
                "clock before create() and skip chunks without content (the first one carries only the role)")
    return (f"your TTFT ({ttft:.3f} s) is longer than the wait for the first text ({expected:.3f} s): did the clock "
            "start long before the request, or stop at a later chunk?")


def _judge_tpot(got, full, to_last, e2e, rel):
    tpot, tokens = got["tpot_s"], full["completion_tokens"]
    if any(_close(tpot, row["tpot_s"], rel) for row in (full, to_last)):
        return None
    if _close(tpot, e2e / tokens, rel):
        return (f"your TPOT ({tpot * 1000:.1f} ms) includes the wait for the first token: TTFT already pays for "
                "that one, so time only the tokens after it")
    return (f"your TPOT ({tpot * 1000:.1f} ms) differs from this stream's {full['tpot_s'] * 1000:.1f} ms per token "
            f"({tokens} tokens by the server's usage; ask for it with stream_options={{'include_usage': True}})")


def bandwidth_judge(model_bytes: float, decode_tps: float, rel: float = 0.02):
    """A judge for GB/s read while decoding one stream: one pass over the file's bytes per token."""
    expected = machine.stream_read_gbs(model_bytes, decode_tps)

    def judge(answer):
        value = float(answer)
        if _close(value, expected, rel, floor=0.0):
            return None
        for factor, hint in ((1e9, "that is bytes per second: a GB is 10^9 bytes"),
                             (8, "that counts bits: bandwidth is in bytes"),
                             (1 / decode_tps, "that is the bytes of one token: multiply by how many tokens come per second")):
            if _close(value, expected * factor, rel, floor=0.0):
                return f"{value:.4g} GB/s is off: {hint}"
        return (f"{value:.4g} GB/s is not what one stream reads: use the model file's size in bytes (what one "
                "token reads) and the small model's median decode tokens/s from the summary")
    return judge

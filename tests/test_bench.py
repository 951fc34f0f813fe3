import itertools
from types import SimpleNamespace

import openai
import pytest
from conftest import needs_server

from workshop_lib.measure import bench, report
from workshop_lib.runtime import endpoint, server


def test_row_formulas_exclude_the_first_token_from_decode():
    usage = SimpleNamespace(completion_tokens=4, prompt_tokens=20)
    row = bench.timing_row("m", 0.5, [1.0, 1.1, 1.2, 1.3], 1.3, usage, {"predicted_per_second": 9.9}, "abcd", None)
    assert row["ttft_s"] == pytest.approx(0.5) and row["e2e_s"] == pytest.approx(0.8)
    assert row["tpot_s"] == pytest.approx(0.1) and row["decode_tps"] == pytest.approx(10)
    assert row["itl_s"] == pytest.approx([0.1, 0.1, 0.1]) and row["tokens_estimated"] is False
    # total_tokens / e2e would claim 30 tokens/s here: prompt tokens are not decoded one by one
    assert (usage.completion_tokens + usage.prompt_tokens) / row["e2e_s"] == pytest.approx(30)


def test_missing_usage_falls_back_to_the_tokenizer_and_is_flagged():
    row = bench.timing_row("m", 0.0, [1.0, 2.0], 2.0, None, None, "hello world", tokenizer=lambda text: 3)
    assert row["completion_tokens"] == 3 and row["tokens_estimated"] is True


def test_a_failed_request_becomes_a_row_not_a_traceback():
    port = server.choose_port()
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    row = bench.stream_once(client, "m", [{"role": "user", "content": "hi"}])
    assert row["status"] == "error" and "APIConnectionError" in row["error"]


@needs_server
def test_a_server_killed_mid_sweep_gives_failed_rows_and_a_report(tmp_path, monkeypatch):
    info = server.start_server(home=tmp_path / "srv", aliases=["qwen2.5-coder-0.5b"], progress=False)
    try:  # whatever fails below, this test's own server is stopped
        monkeypatch.setenv("WORKSHOP_ENDPOINT", info.base_url)
        monkeypatch.setenv("WORKSHOP_API_KEY", server.api_key())  # every server of this install uses this key
        lab = endpoint.connect(verbose=False)
        real_stream_once, done = bench.stream_once, []

        def stream_then_kill_after_third(*args, **kwargs):  # the real request; the kill is real too
            row = real_stream_once(*args, **kwargs)
            done.append(row)
            if len(done) == 3:
                server.stop_server(tmp_path / "srv")
            return row

        monkeypatch.setattr(bench, "stream_once", stream_then_kill_after_third)
        requests, levels = bench.sweep(lab.client, {"slm": lab.slm}, [bench.COUNTING_PROMPT],
                                       levels=(1, 2, 4), requests_per_slot=2, max_tokens=16)
    finally:
        server.stop_server(tmp_path / "srv")
    failed = requests[requests["status"] == "error"]
    assert len(requests) == 14 and 1 <= len(failed) <= 12  # the first requests finished (after a warm-up), the rest failed
    assert (failed["error"].str.len() > 0).all()  # each failure says why
    assert levels["failed"].sum() == len(failed)
    files = report.export(tmp_path / "out", {"test": "kill"}, requests, sweep=levels)
    assert f"Failures: {len(failed)}" in files["report"].read_text()


def test_without_usage_or_tokenizer_chunks_are_counted_and_labelled():
    row = bench.timing_row("m", 0.0, [1.0, 1.5, 2.0], 2.0, None, None, "a b c", tokenizer=None)
    assert row["completion_tokens"] == 3 and row["token_source"] == "chunks" and row["tokens_estimated"]


class ServerThat:
    """Stands in for a ``Connection``'s capability answers (the real ones are tested in test_capabilities)."""
    def __init__(self, *capabilities, counter=None):
        self.capabilities, self.counter, self.said = set(capabilities), counter, []

    def supports(self, name, purpose=""):
        if name not in self.capabilities:
            self.said.append(name)
        return name in self.capabilities

    def token_counter(self, model):
        return self.counter


def test_the_plan_asks_the_server_not_to_cache_else_makes_prompts_unique():
    plan = bench.plan_requests(ServerThat("prompt_cache_control", "streamed_usage"), ["m"])
    assert plan.cache == "server-off" and plan.options("m")["extra_body"] == {"cache_prompt": False}
    prompt = [{"role": "user", "content": "hi"}]
    assert plan.request(prompt) == prompt
    plan = bench.plan_requests(ServerThat("streamed_usage"), ["m"])
    first, second = plan.request(prompt), plan.request(prompt)
    assert plan.cache == "unique" and plan.options("m")["extra_body"] is None
    assert first != second and first[0]["content"].endswith("hi") and prompt[0]["content"] == "hi"
    assert bench.plan_requests(ServerThat(), ["m"], allow_cache=True).request(prompt) == prompt


def test_the_plan_counts_tokens_with_a_tokenizer_where_usage_is_missing(capsys):
    counter = len
    plan = bench.plan_requests(ServerThat("prompt_cache_control", counter=counter), ["m"])
    assert plan.options("m")["tokenizer"] is counter and "tokenizer" in capsys.readouterr().out
    plan = bench.plan_requests(ServerThat("prompt_cache_control"), ["m"])
    assert plan.options("m")["tokenizer"] is None and "stream chunks" in capsys.readouterr().out


def steady_rows():
    # two streams: A from 0 to 10 s, B from 0 to 4 s then C from 4 to 9 s; a token a second from TTFT (1 s) on
    def row(start, end):
        ttft, n = 1.0, int(end - start - 1) + 1
        return {"status": "ok", "t_start_s": start, "ttft_s": ttft, "e2e_s": end - start,
                "itl_s": [1.0] * (n - 1), "chunks": n, "completion_tokens": n, "decode_tps": 1.0}
    return [row(0, 10), row(0, 4), row(4, 9)]


def test_the_steady_window_runs_while_every_stream_generates():
    rows = steady_rows()
    assert bench.steady_window(rows, 2) == (1.0, 9.0)  # both first tokens at 1 s; C, the last, ends at 9 s
    assert bench.tokens_in_window(rows, (1.0, 9.0)) == 9 + 4 + 5  # A's tokens at 1..9, B's at 1..4, C's at 5..9
    level = bench.level_summary("slm", "m", 2, rows, wall=10.0)
    assert level["aggregate_tps"] == pytest.approx(19 / 10) and level["steady_tps"] == pytest.approx(18 / 8)
    assert bench.steady_window(rows[:1], 2) is None


LONG_PROMPT = [{"role": "system", "content": "You summarize text in three bullet points."},
               {"role": "user", "content": "Summarize: " + " ".join(
                   ["Small language models trade some breadth of knowledge for speed and privacy."] * 6)}]


@needs_server
def test_repeated_identical_requests_are_timed_as_prefill_not_cache_hits():
    """The benchmark's repeats of one prompt cost a prefill each (TTFT within 2x of the first request's);
    the same repeats with the cache allowed are cache hits. Medians, since the machine may be shared."""
    lab = endpoint.connect(verbose=False)
    plan = bench.plan_requests(lab, [lab.slm]) if hasattr(lab, "supports") else bench.RequestPlan()

    def repeats(plan):
        rows = bench.run_prompts(lab, {"slm": lab.slm}, [bench.unique_messages(LONG_PROMPT, 0)], max_tokens=2,
                                 rounds=5, warmup=0, plan=plan)
        assert (rows["status"] == "ok").all(), rows["error"].tolist()
        return rows, rows["ttft_s"].iloc[1:].median() / rows["ttft_s"].iloc[0]

    rows, ratio = repeats(plan)
    cached, cached_ratio = repeats(bench.RequestPlan("allowed"))
    assert ratio >= 0.5, rows["ttft_s"].tolist()  # a prefill each time, not a cache hit
    assert cached_ratio < ratio, (cached["ttft_s"].tolist(), rows["ttft_s"].tolist())
    if rows["server_prompt_cached"].notna().all():  # llama-server says how much of each prompt it reused
        assert (rows["server_prompt_cached"] <= 0.1 * rows["prompt_tokens"]).all()  # the template's start at most
        assert (cached["server_prompt_cached"].iloc[1:] > 0.5 * cached["prompt_tokens"].iloc[1:]).all()


class BreaksOnce:
    """The real client, except that one request's stream breaks mid-way with an unexpected error."""
    def __init__(self, client, broken=2):
        self.real, self.calls, self.broken = client, itertools.count(1), broken
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def create(self, **kwargs):
        call = next(self.calls)  # atomic: requests of a sweep level run in threads
        stream = self.real.chat.completions.create(**kwargs)
        if call != self.broken:
            return stream

        def broken_stream():
            yield next(iter(stream))
            raise ValueError("malformed server-sent event")
        return broken_stream()


@needs_server
def test_a_sweep_with_one_broken_request_keeps_all_other_rows():
    lab = endpoint.connect(verbose=False)
    requests, levels = bench.sweep(BreaksOnce(lab.client), {"slm": lab.slm}, [bench.COUNTING_PROMPT],
                                   levels=(1, 2), requests_per_slot=1, max_tokens=8)
    assert len(requests) == 3 and (requests["status"] == "error").sum() == 1
    assert "ValueError: malformed" in requests.loc[requests["status"] == "error", "error"].iloc[0]
    assert levels["failed"].sum() == 1 and (levels["requests"] == [1, 2]).all()


class RecordingClient:
    """Passes requests to a real client and keeps every streamed chunk; ``replay`` plays them back."""

    def __init__(self, client, replay=None):
        self.client, self.chunks, self.replay = client, [], replay
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def create(self, **kwargs):
        return iter(self.replay) if self.replay is not None else self.record(kwargs)

    def record(self, kwargs):
        for chunk in self.client.chat.completions.create(**kwargs):
            self.chunks.append(chunk)
            yield chunk


@needs_server
def test_stream_once_reads_role_only_empty_and_usage_only_chunks_as_they_come():
    lab = endpoint.connect(verbose=False)
    recorder = RecordingClient(lab.client)
    row = bench.stream_once(recorder, lab.slm, bench.COUNTING_PROMPT, max_tokens=12)
    first, last = recorder.chunks[0], recorder.chunks[-1]
    assert first.choices and first.choices[0].delta.role == "assistant" and not first.choices[0].delta.content
    assert last.choices == [] and last.usage is not None  # the usage-only chunk include_usage asks for
    with_text = [c for c in recorder.chunks if c.choices and c.choices[0].delta.content]
    assert row["status"] == "ok" and row["chunks"] == len(with_text)
    assert row["completion_tokens"] == last.usage.completion_tokens
    assert row["text"] == "".join(c.choices[0].delta.content for c in with_text)
    # The same stream with an empty chunk after every text chunk: the empties count for nothing.
    empty = first.model_copy(deep=True)
    empty.choices[0].delta.role, empty.choices[0].delta.content = None, ""
    replay = [c for chunk in recorder.chunks for c in ([chunk, empty] if chunk in with_text else [chunk])]
    again = bench.stream_once(RecordingClient(None, replay), lab.slm, bench.COUNTING_PROMPT, max_tokens=12)
    assert again["chunks"] == row["chunks"] and again["text"] == row["text"]
    assert again["completion_tokens"] == row["completion_tokens"]

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


def fake_requests():
    ok = [{"role": "slm", "model": "a", "status": "ok", "error": "", "ttft_s": t, "e2e_s": t + 1,
           "tpot_s": 0.05, "decode_tps": 20.0, "completion_tokens": 21, "prompt_tokens": 30,
           "itl_s": [0.05, 0.06], "concurrency": 1} for t in (0.1, 0.2, 0.3, 0.4, 1.5)]
    failed = {"role": "slm", "model": "a", "status": "error", "error": "APIConnectionError: down",
              "e2e_s": 0.01, "concurrency": 2}
    import pandas as pd
    return pd.DataFrame(ok + [failed])


def test_summary_percentiles_are_ordered_and_skip_failures():
    summary = report.summarize(fake_requests())
    ttft = summary[summary["metric"] == "ttft_s"].iloc[0]
    assert ttft["n"] == 5 and ttft["p50"] == pytest.approx(0.3)
    assert ttft["p50"] <= ttft["p90"] <= ttft["p95"] <= ttft["p99"] <= 1.5


def test_exports_load_back_with_the_same_numbers(tmp_path):
    import pandas as pd
    requests = fake_requests()
    sweep = pd.DataFrame([{"role": "slm", "concurrency": 1, "aggregate_tps": 19.5}])
    files = report.export(tmp_path, {"rounds": 1}, requests, sweep=sweep)
    back = report.load_results(tmp_path)
    assert back["config"] == {"rounds": 1}
    by_level = report.summarize(requests, ("role", "model", "concurrency"))
    pd.testing.assert_frame_equal(back["summary"], by_level, check_dtype=False)
    assert back["sweep"]["aggregate_tps"].tolist() == [19.5]
    assert pd.read_csv(files["requests"])["ttft_s"].dropna().tolist() == requests["ttft_s"].dropna().tolist()
    assert "Failures: 1" in files["report"].read_text() and not list(tmp_path.glob("*.tmp"))


@needs_server
def test_a_server_killed_mid_sweep_gives_failed_rows_and_a_report(tmp_path, monkeypatch):
    info = server.start_server(home=tmp_path / "srv", aliases=["qwen2.5-coder-0.5b"], progress=False)
    monkeypatch.setenv("WORKSHOP_ENDPOINT", info.base_url)
    lab = endpoint.connect(verbose=False)
    real_stream_once, done = bench.stream_once, []

    def stream_then_kill_after_third(*args, **kwargs):  # the real request; the kill is real too
        row = real_stream_once(*args, **kwargs)
        done.append(row)
        if len(done) == 3:
            server.stop_server(tmp_path / "srv")
        return row

    monkeypatch.setattr(bench, "stream_once", stream_then_kill_after_third)
    try:
        requests, levels = bench.sweep(lab.client, {"slm": lab.slm}, [bench.COUNTING_PROMPT],
                                       levels=(1, 2, 4), requests_per_slot=2, max_tokens=16)
    finally:
        server.stop_server(tmp_path / "srv")
    failed = requests[requests["status"] == "error"]
    assert len(requests) == 14 and 1 <= len(failed) <= 11  # the first requests finished, the rest failed
    assert (failed["error"].str.len() > 0).all()  # each failure says why
    assert levels["failed"].sum() == len(failed)
    files = report.export(tmp_path / "out", {"test": "kill"}, requests, sweep=levels)
    assert f"Failures: {len(failed)}" in files["report"].read_text()

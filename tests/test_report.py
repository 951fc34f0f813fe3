"""Summaries and exports of benchmark results: percentiles, flags on tiny samples, rounds kept apart from
the sweep, and files that load back with the same numbers."""
import pandas as pd
import pytest

from workshop_lib.measure import report


def fake_requests():
    ok = [{"role": "slm", "model": "a", "status": "ok", "error": "", "ttft_s": t, "e2e_s": t + 1,
           "tpot_s": 0.05, "decode_tps": 20.0, "completion_tokens": 21, "prompt_tokens": 30,
           "itl_s": [0.05, 0.06], "concurrency": 1} for t in (0.1, 0.2, 0.3, 0.4, 1.5)]
    failed = {"role": "slm", "model": "a", "status": "error", "error": "APIConnectionError: down",
              "e2e_s": 0.01, "concurrency": 2}
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


def test_tail_percentiles_of_tiny_samples_are_flagged():
    summary = report.summarize(fake_requests())  # 5 requests
    assert set(summary["tail_unreliable"]) == {"p90,p95,p99"}
    assert report.tail_unreliable(500) == "" and report.tail_unreliable(30) == "p95,p99"


def test_report_keeps_rounds_and_sweep_apart(tmp_path):
    import pandas as pd
    rounds = fake_requests().assign(phase="rounds", concurrency=1)
    sweep_rows = fake_requests().assign(phase="sweep", concurrency=1, ttft_s=9.0)
    files = report.export(tmp_path, {}, pd.concat([rounds, sweep_rows], ignore_index=True))
    summary = pd.read_csv(files["summary"])
    ttft = summary[summary["metric"] == "ttft_s"].set_index("phase")["p50"]
    assert ttft["rounds"] == pytest.approx(0.3) and ttft["sweep"] == pytest.approx(9.0)
    text = files["report"].read_text()
    assert "one request at a time" in text and "during the concurrency sweep" in text

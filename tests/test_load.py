"""Open-loop load (lesson 03): arrivals on a schedule the server cannot slow down, goodput counted as
``vllm bench serve --goodput`` counts it, and the knee of a rate sweep."""
import time
from types import SimpleNamespace

import pandas as pd
import pytest
from openai.types.chat import ChatCompletionChunk

from workshop_lib.errors import WorkshopError
from workshop_lib.measure import bench, load


def chunk(content=None, usage=None):
    data = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [] if content is None else [{"index": 0, "delta": {"content": content}}]}
    if usage:
        data["usage"] = usage
    return ChatCompletionChunk.model_validate(data)


class SlowServer:
    """Every streamed answer takes ``seconds`` before its first token and has two tokens."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def create(self, **kwargs):
        def stream():
            time.sleep(self.seconds)
            yield chunk("a")
            yield chunk("b")
            yield chunk(None, {"completion_tokens": 2, "prompt_tokens": 5, "total_tokens": 7})
        return stream()


PROMPT = [{"role": "user", "content": "hi"}]


def test_constant_arrivals_are_evenly_spaced_and_poisson_ones_average_the_rate():
    assert load.arrival_times(4.0, 4, "constant") == [0.0, 0.25, 0.5, 0.75]
    times = load.arrival_times(2.0, 2001, "poisson", seed=1)
    gaps = pd.Series(times).diff().dropna()
    assert times[0] == 0.0 and gaps.min() > 0 and gaps.mean() == pytest.approx(0.5, rel=0.1)
    assert gaps.std() == pytest.approx(0.5, rel=0.15)  # exponential gaps: std equals the mean
    assert load.arrival_times(2.0, 5, "poisson", seed=3) == load.arrival_times(2.0, 5, "poisson", seed=3)


@pytest.mark.parametrize("rate, pattern", [(0, "poisson"), (-1, "constant"), (1, "bursty")])
def test_a_bad_rate_or_pattern_is_an_error_that_says_what_to_pass(rate, pattern):
    with pytest.raises(WorkshopError, match="What to do"):
        load.arrival_times(rate, 3, pattern)


def test_requests_start_on_schedule_even_when_the_server_is_slower_than_the_rate():
    # each answer takes 1.5 s; a closed loop of one would start them 1.5 s apart, the open loop 0.1 s apart.
    # The bounds leave a busy CI machine a second of slack: what they catch is waiting for answers.
    rows, duration = load.run_open_loop(SlowServer(1.5), "m", [PROMPT], rate=10, requests=4, pattern="constant",
                                        plan=bench.RequestPlan("allowed"))
    starts = [r["t_start_s"] for r in rows]
    assert [r["scheduled_s"] for r in rows] == [0.0, 0.1, 0.2, 0.3]
    assert max(starts) - min(starts) < 1.0, starts  # all four began before the first answer could end
    assert all(r["status"] == "ok" for r in rows) and duration < 3.0  # a closed loop needs 6 s


def row(ttft, tpot, e2e=1.0, status="ok"):
    return {"status": status, "ttft_s": ttft, "tpot_s": tpot, "e2e_s": e2e}


def test_goodput_counts_requests_meeting_every_target_over_the_whole_duration():
    rows = [row(0.5, 0.05), row(1.5, 0.05), row(0.5, 0.2), row(0.9, None), row(None, None, status="error"),
            row(1.0, 0.1)]  # met exactly counts (vllm: target >= value); a one-token answer's TPOT is 0
    result = load.goodput(rows, duration_s=2.0, ttft=1.0, tpot=0.1)
    assert result["good"] == 3 and result["completed"] == 5
    assert result["goodput_rps"] == pytest.approx(1.5) and result["request_rps"] == pytest.approx(2.5)
    assert result["good_share"] == pytest.approx(0.5)
    assert load.goodput(rows, 2.0, e2el=0.9)["good"] == 0


def test_an_unknown_goodput_target_is_refused():
    with pytest.raises(WorkshopError, match="ttft, tpot"):
        load.goodput([row(0.5, 0.05)], 1.0, itl=0.1)


def test_the_knee_is_the_first_rate_whose_median_ttft_doubles():
    levels = pd.DataFrame({"offered_rps": [0.5, 1, 2, 4], "ttft_p50_s": [0.30, 0.35, 0.9, 3.0]})
    assert load.find_knee(levels) == 2
    assert load.find_knee(levels.iloc[:2]) is None  # never saturated: no knee claimed


def test_the_cli_reads_goodput_targets_in_milliseconds_as_vllm_does():
    assert bench.parse_goodput(["ttft:1000", "tpot:100"]) == {"ttft": 1.0, "tpot": 0.1}
    assert bench.parse_goodput(["ttft:500,e2el:4000"]) == {"ttft": 0.5, "e2el": 4.0}
    with pytest.raises(WorkshopError, match="KEY:MS"):
        bench.parse_goodput(["ttft=1000"])


def test_a_rate_sweep_gives_one_line_per_rate_with_goodput():
    requests, levels = load.rate_sweep(SlowServer(0.05), "m", [PROMPT], rates=[5, 20], requests_per_rate=3,
                                       pattern="constant", plan=bench.RequestPlan("allowed"))
    assert list(levels["offered_rps"]) == [5, 20] and (levels["requests"] == 3).all()
    assert len(requests) == 6 and set(requests["phase"]) == {"open-loop"}
    assert (levels["goodput_rps"] > 0).all() and (levels["failed"] == 0).all()


def test_the_cli_runs_an_open_loop_sweep_and_exports_it_with_its_knee(tmp_path, monkeypatch, capsys):
    lab = SimpleNamespace(client=SlowServer(0.01), models={"slm": "m"}, backend="fake",
                          supports=lambda name, purpose="": name != "timings", token_counter=lambda m: None)
    monkeypatch.setattr(bench, "connect", lambda: lab)
    assert bench.main(["--roles", "slm", "--open-loop", "5", "10", "--pattern", "constant", "--requests", "2",
                       "--goodput", "ttft:1000,tpot:100", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "open_loop.csv")
    assert list(table["offered_rps"]) == [5, 10] and "knee" in table and (table["goodput_rps"] > 0).all()
    assert "Open-loop load" in (tmp_path / "report.md").read_text()


def test_the_cli_runs_a_prompt_length_sweep(tmp_path, monkeypatch):
    lab = SimpleNamespace(client=SlowServer(0.01), models={"slm": "m"}, backend="fake",
                          supports=lambda name, purpose="": name != "timings", token_counter=lambda m: None)
    monkeypatch.setattr(bench, "connect", lambda: lab)
    assert bench.main(["--roles", "slm", "--prompt-lengths", "16", "32", "--rounds", "1", "--out", str(tmp_path)]) == 0
    assert list(pd.read_csv(tmp_path / "prefill.csv")["words"]) == [16, 32]
    assert "prompt length" in (tmp_path / "report.md").read_text()

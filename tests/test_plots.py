"""The shared charts: readable grids, ECDFs with a log axis where values span decades, and a sweep chart
that uses only the sweep's own requests."""
import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from workshop_lib.measure import plots  # noqa: E402


def requests():
    rows = []
    for phase, ttft in (("rounds", 0.2), ("sweep", 5.0)):
        for role in ("slm", "llm"):
            for i in range(5):
                rows.append({"phase": phase, "role": role, "status": "ok", "concurrency": 1, "ttft_s": ttft + i / 100,
                             "e2e_s": ttft + 1, "tpot_s": 0.05, "decode_tps": 20.0 + i, "itl_s": 0.01 * 10 ** i})
    return pd.DataFrame(rows)


def test_four_metrics_go_in_a_two_by_two_grid():
    fig = plots.plot_distributions(requests(), {"ttft_s": "TTFT", "e2e_s": "e2e", "tpot_s": "TPOT",
                                                "decode_tps": "decode"})
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4 and {round(ax.get_position().x0, 1) for ax in visible} == {0.1, 0.6}


def test_three_bar_panels_leave_the_fourth_cell_hidden():
    fig = plots.plot_metrics(requests(), {"ttft_s": "TTFT", "e2e_s": "e2e", "decode_tps": "decode"})
    assert [ax.get_visible() for ax in fig.axes] == [True, True, True, False]


def test_ecdf_turns_logarithmic_when_values_span_decades():
    fig = plots.plot_distributions(requests(), {"itl_s": "gap", "decode_tps": "decode"})
    gap, decode = fig.axes[:2]
    assert gap.get_xscale() == "log" and decode.get_xscale() == "linear"
    line = gap.get_lines()[0]
    assert list(line.get_ydata())[-1] == pytest.approx(1.0)  # an ECDF ends at every request


def test_sweep_chart_has_an_ideal_line_and_ignores_the_sequential_rounds():
    levels = pd.DataFrame([{"role": "slm", "concurrency": c, "aggregate_tps": 20 * c ** 0.5, "steady_tps": 21 * c ** 0.5,
                            "per_stream_tps": 20 / c ** 0.5} for c in (1, 2, 4)])
    reqs = requests().query("role == 'slm'")
    fig = plots.plot_sweep(levels, reqs)
    aggregate, per_stream, ttft, _ = fig.axes
    ideal = [line for line in aggregate.get_lines() if "ideal" in line.get_label()][0]
    assert list(ideal.get_ydata()) == pytest.approx([20, 40, 80])
    assert list(ttft.get_lines()[0].get_ydata()) == pytest.approx([5.02])  # the sweep's median, not the rounds'
    assert per_stream.get_title().startswith("decode tokens/s per stream")


def test_roofline_puts_the_ridge_where_bandwidth_meets_compute():
    points = pd.DataFrame({"concurrency": [1, 4], "flops_per_byte": [2.0, 8.0], "gflops": [40.0, 60.0]})
    fig = plots.plot_roofline(bandwidth_gbs=20, gflops=60, points=points)
    ax = fig.axes[0]
    roof = ax.get_lines()[0]
    ridge = ax.get_lines()[1].get_xdata()[0]
    assert ridge == pytest.approx(3.0)
    assert max(roof.get_ydata()) == pytest.approx(60) and ax.get_xscale() == "log"
    assert len(ax.collections[0].get_offsets()) == 2


def test_the_rate_sweep_marks_its_knee_on_both_panels():
    levels = pd.DataFrame({"offered_rps": [0.5, 1, 2], "request_rps": [0.45, 0.9, 1.1], "goodput_rps": [0.45, 0.8, 0.2],
                           "ttft_p50_s": [0.3, 0.4, 2.0], "ttft_p90_s": [0.4, 0.6, 3.0]})
    fig = plots.plot_rate_sweep(levels, knee=2, targets={"ttft": 1.0, "tpot": 0.1})
    for ax in fig.axes:
        assert any("knee: 2" in text.get_text() for text in ax.get_legend().get_texts())
    assert "ttft <= 1000 ms" in " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_the_prefill_chart_draws_the_fitted_line_and_where_ttft_leaves_it():
    table = pd.DataFrame({"prompt_tokens": [64, 256, 1024, 2048], "ttft_s": [0.3, 1.0, 4.0, 10.0],
                          "prefill_tps": [213, 256, 256, 205], "decode_tps": [40, 39, 35, 30]})
    fig = plots.plot_prefill(table, {"fixed_s": 0.06, "per_token_s": 0.0038, "departs_at": 2048})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "leaves the line at 2048 tokens" in labels and len(fig.axes[0].lines) == 3


def test_the_speculative_chart_has_a_bar_per_variant_and_task_and_labels_only_drafting_bars():
    summary = pd.DataFrame([
        {"task": t, "variant": v, "speedup": s, "acceptance": a}
        for t in ("code", "edit") for v, s, a in (("alone", 1.0, None), ("n-gram", 1.6, 0.74), ("kv q8_0", 0.97, None))])
    fig = plots.plot_speculative(summary)
    ax = fig.axes[0]
    assert len(ax.patches) == 4  # the baseline is the dotted line, not bars
    assert sorted(t.get_text() for t in ax.texts) == ["74%", "74%"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["code", "edit"]


def test_the_prefill_chart_adds_llama_bench_only_where_it_ran():
    table = pd.DataFrame({"prompt_tokens": [64, 2048], "ttft_s": [0.3, 10.0], "prefill_tps": [213, 205],
                          "decode_tps": [40, 30]})
    without = plots.plot_prefill(table)
    with_bench = plots.plot_prefill(table.assign(bench_decode_tps=[41.0, 31.0]))
    labels = [t.get_text() for t in with_bench.axes[1].get_legend().get_texts()]
    assert len(with_bench.axes[1].lines) == len(without.axes[1].lines) + 1 and "decode, llama-bench -d" in labels


def test_the_goal_chart_has_a_panel_per_goal_with_each_pipelines_interval_and_the_target():
    goals = pd.DataFrame([{"model": m, "pipeline": p, "goal": g, "share": 0.5, "low": 0.3, "high": 0.7, "target": t}
                          for g, t in (("correct (answerable)", "at least 50%"), ("false refusals (answerable)", "at most 15%"))
                          for m in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b") for p in ("lesson", "app")])
    fig = plots.plot_goals(goals)
    assert [ax.get_title() for ax in fig.axes] == ["correct (answerable)", "false refusals (answerable)"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0.5b · lesson", "0.5b · app", "1.5b · lesson", "1.5b · app"]
    assert fig.axes[1].lines[-1].get_xdata()[0] == pytest.approx(0.15)  # the dashed target line

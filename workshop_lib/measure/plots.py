"""Charts the notebooks share, so every lesson shows comparable numbers the same way.

Panels go in a grid of at most two columns, so each stays wide enough to read in JupyterLab.
"""
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

COLORS = plt.cm.tab10.colors


def plot_metrics(df, metrics: dict, by: str = "role", title: str = ""):
    """One bar panel per metric: the mean per ``by`` group, with min-max whiskers.

    ``metrics`` maps a column to its axis label, e.g. ``{"ttft_s": "TTFT (s)"}``. Taught in 00."""
    fig, panels = _grid(metrics, height=3.2)
    for ax, (column, label) in panels:
        stats = df.groupby(by)[column].agg(["mean", "min", "max"])
        errors = [stats["mean"] - stats["min"], stats["max"] - stats["mean"]]
        ax.bar(stats.index.astype(str), stats["mean"], yerr=errors, capsize=4, color=COLORS[: len(stats)])
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
    return _finish(fig, title)


def plot_distributions(df, metrics: dict, by: str = "role", title: str = "", log=None):
    """One ECDF panel per metric, a line per ``by`` group (taught in 03).

    An ECDF puts every request on the curve: read the median at 0.5 on the y axis and the slow tail at
    the top right, where histograms and boxes hide it. The x axis turns logarithmic when a metric spans
    more than a factor of 10 (``log=True``/``False`` forces it)."""
    fig, panels = _grid(metrics, height=3.2)
    for ax, (column, label) in panels:
        groups = {str(g): df.loc[df[by] == g, column].dropna().astype(float).to_numpy()
                  for g in sorted(df[by].dropna().unique())}
        draw_ecdf(ax, groups, label, log)
    return _finish(fig, title)


def draw_ecdf(ax, groups: dict, label: str, log=None) -> None:
    """Step curves of the share of requests at or below each value, one per ``{name: values}``."""
    values = np.concatenate([v for v in groups.values() if len(v)] or [np.array([])])
    positive = values[values > 0]
    if log is None:
        log = len(positive) > 1 and positive.max() / positive.min() > 10
    for color, (name, v) in zip(COLORS, groups.items()):
        v = np.sort(v[v > 0] if log else v)
        if len(v):
            share = np.arange(1, len(v) + 1) / len(v)
            ax.step(v, share, where="post", color=color, label=f"{name} (n={len(v)})")
            if len(v) <= 30:  # few requests: show each one
                ax.plot(v, share, ".", color=color)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(label + (" (log scale)" if log else ""))
    ax.set_ylabel("share of requests ≤ x")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")


def plot_sweep(levels, requests, by: str = "role"):
    """Concurrency sweep in a 2x2 grid (taught in 03): aggregate output tokens/s against the ideal of
    perfect scaling, tokens/s each stream gets, median TTFT and median request latency.

    Only the sweep's own requests are used: the sequential rounds never enter the concurrency-1 point."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4))
    (agg, per_stream), (ttft, latency) = axes
    runs = requests[(requests["status"] == "ok") & (requests.get("phase", "sweep") == "sweep")]
    for color, (name, group) in zip(COLORS, levels.groupby(by)):
        group = group.sort_values("concurrency")
        one = group.loc[group["concurrency"] == group["concurrency"].min()]
        agg.plot(group["concurrency"], group["aggregate_tps"], "o-", color=color, label=f"{name}, whole run")
        if group["steady_tps"].notna().any():
            agg.plot(group["concurrency"], group["steady_tps"], "s--", color=color, alpha=0.7,
                     label=f"{name}, steady window")
        if len(one):  # what N streams would give if each kept the speed of one
            base = one["aggregate_tps"].iloc[0] / one["concurrency"].iloc[0]
            agg.plot(group["concurrency"], base * group["concurrency"], ":", color=color, label=f"{name}, ideal")
        per_stream.plot(group["concurrency"], group["per_stream_tps"], "o-", color=color, label=str(name))
        mine = runs[runs[by] == name].groupby("concurrency")
        ttft.plot(mine["ttft_s"].median().index, mine["ttft_s"].median().values, "o-", color=color, label=str(name))
        latency.plot(mine["e2e_s"].median().index, mine["e2e_s"].median().values, "o-", color=color,
                     label=str(name))
    seen = sorted(levels["concurrency"].unique())
    titles = ["aggregate output tokens/s", "decode tokens/s per stream (median)", "median TTFT (s)",
              "median request latency (s)"]
    for ax, name in zip(axes.flat, titles):
        ax.set_xlabel("concurrent streams")
        ax.set_xscale("log", base=2)
        ax.set_xticks(seen, [str(level) for level in seen])
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_roofline(bandwidth_gbs: float, gflops: float, points, label: str = "measured", title: str = ""):
    """A roofline (taught in 03): attainable GFLOP/s against FLOPs per byte read, the slanted memory roof
    (bandwidth x intensity) and the flat compute roof, with ``points`` (columns ``flops_per_byte``,
    ``gflops``, ``concurrency``, as ``machine.place_measurements`` makes them) placed under it."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ridge = gflops / bandwidth_gbs  # where the two roofs meet
    low = min(points["flops_per_byte"].min(), ridge) / 4
    high = max(points["flops_per_byte"].max(), ridge) * 4
    x = np.geomspace(low, high, 200)
    ax.plot(x, np.minimum(bandwidth_gbs * x, gflops), color="black",
            label=f"roof: {bandwidth_gbs:.1f} GB/s, {gflops:.0f} GFLOP/s")
    ax.axvline(ridge, color="grey", linestyle=":", linewidth=1)
    ax.scatter(points["flops_per_byte"], points["gflops"], color=COLORS[0], zorder=3, label=label)
    for _, p in points.iterrows():
        ax.annotate(f"{int(p['concurrency'])} stream(s)", (p["flops_per_byte"], p["gflops"]),
                    textcoords="offset points", xytext=(5, -12), fontsize="small")
    ax.set(xscale="log", yscale="log", xlabel="FLOPs per byte of weights read (streams x 2 x parameters / bytes)",
           ylabel="GFLOP/s")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="lower right")
    return _finish(fig, title)


def plot_rate_sweep(levels, knee=None, targets: dict = None, title: str = ""):
    """Open-loop rate sweep (taught in 03): served against offered requests/s with goodput, and median and
    p90 TTFT against the offered rate; the knee (``load.find_knee``) is a vertical line on both."""
    fig, (served, ttft) = plt.subplots(1, 2, figsize=(10, 3.6))
    levels = levels.sort_values("offered_rps")
    rate = levels["offered_rps"]
    served.plot(rate, rate, ":", color="grey", label="offered (a server that keeps up)")
    served.plot(rate, levels["request_rps"], "o-", color=COLORS[0], label="completed requests/s")
    goal = ", ".join(f"{k} <= {v * 1000:.0f} ms" for k, v in (targets or {}).items())
    served.plot(rate, levels["goodput_rps"], "s--", color=COLORS[2], label=f"goodput ({goal or 'targets met'})")
    ttft.plot(rate, levels["ttft_p50_s"], "o-", color=COLORS[1], label="median TTFT")
    ttft.plot(rate, levels["ttft_p90_s"], "^--", color=COLORS[3], label="p90 TTFT")
    for ax, name in ((served, "requests/s"), (ttft, "TTFT (s)")):
        if knee is not None:
            ax.axvline(knee, color="red", linestyle="--", linewidth=1, label=f"knee: {knee:g} requests/s")
        ax.set(xlabel="offered requests/s", title=name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return _finish(fig, title)


def plot_prefill(table, fit: dict = None, title: str = ""):
    """Prompt-length sweep (taught in 03): TTFT against prompt tokens with the line fitted to the shortest
    prompts (``prefill.linear_until``), and prefill and decode tokens/s against the same lengths (and
    llama-bench's decode at each depth, where ``prefill.with_bench_depths`` added it)."""
    fig, (ttft, speed) = plt.subplots(1, 2, figsize=(10, 3.6))
    t = table.sort_values("prompt_tokens")
    ttft.plot(t["prompt_tokens"], t["ttft_s"], "o-", color=COLORS[0], label="measured TTFT (median)")
    if fit and fit.get("per_token_s") is not None:
        x = np.linspace(0, t["prompt_tokens"].max(), 50)
        ttft.plot(x, fit["fixed_s"] + fit["per_token_s"] * x, ":", color="grey", label="line through the shortest")
        if fit.get("departs_at"):
            ttft.axvline(fit["departs_at"], color="red", linestyle="--", linewidth=1,
                         label=f"leaves the line at {fit['departs_at']} tokens")
    speed.plot(t["prompt_tokens"], t["prefill_tps"], "o-", color=COLORS[1], label="prefill tokens/s")
    speed.plot(t["prompt_tokens"], t["decode_tps"], "s-", color=COLORS[2], label="decode tokens/s after it")
    if "bench_decode_tps" in t:  # prefill.with_bench_depths: the same depths, no HTTP
        speed.plot(t["prompt_tokens"], t["bench_decode_tps"], "x--", color=COLORS[3], label="decode, llama-bench -d")
    speed.set_yscale("log")
    ttft.set(xlabel="prompt tokens", ylabel="seconds", title="TTFT, prompt cache off")
    speed.set(xlabel="prompt tokens (context depth)", ylabel="tokens/s (log scale)", title="speed")
    for ax in (ttft, speed):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    return _finish(fig, title)


def plot_speculative(summary, title: str = ""):
    """Speculative decoding (taught in 03): speedup over the model alone per task and variant, with the
    share of drafted tokens accepted written on each bar (``speculative.summarize``); 1.0 = no change."""
    lines = summary[summary["variant"] != "alone"]
    tasks, variants = list(dict.fromkeys(lines["task"])), list(dict.fromkeys(lines["variant"]))
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    width = 0.8 / max(len(variants), 1)
    for i, variant in enumerate(variants):
        part = lines[lines["variant"] == variant].set_index("task").reindex(tasks)
        x = np.arange(len(tasks)) + (i - (len(variants) - 1) / 2) * width
        bars = ax.bar(x, part["speedup"], width, color=COLORS[i % len(COLORS)], label=variant)
        for bar, share in zip(bars, part["acceptance"]):
            if share is not None and not pd.isna(share):
                ax.annotate(f"{share:.0%}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize="small")
    ax.axhline(1.0, color="grey", linestyle=":", label="the model alone")
    ax.set_xticks(np.arange(len(tasks)), tasks)
    ax.set(ylabel="decode speed / model alone", title="speedup (labels: drafted tokens accepted)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small")
    return _finish(fig, title)


def plot_goals(goals, title: str = ""):
    """RAG goals (taught in 04, from ``rag.evaluate.goal_frame``): one panel per goal, each model and
    pipeline's share with its 95 % interval, and the target as a dashed line."""
    names = list(dict.fromkeys(goals["goal"]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.1 * len(names), 3.4), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), names):
        part = goals[goals["goal"] == name].reset_index(drop=True)
        labels = part["model"].str.replace("qwen2.5-coder-", "") + " · " + part["pipeline"]
        share = part["share"].fillna(0)
        errors = [(share - part["low"]).clip(lower=0), (part["high"] - share).clip(lower=0)]
        ax.barh(labels, share, xerr=errors, color=[COLORS[i % len(COLORS)] for i in range(len(part))], capsize=3)
        ax.axvline(float(part["target"].iloc[0].split()[-1].rstrip("%")) / 100, color="black", linestyle="--",
                   linewidth=1, label=part["target"].iloc[0])
        ax.set(xlim=(0, 1), title=name, xlabel="share (95 % interval)")
        ax.legend(fontsize="small", loc="lower right")
    return _finish(fig, title)


def _grid(metrics: dict, height: float):
    """Panels in rows of two, paired with ``(column, label)``; unused cells are hidden."""
    columns = min(2, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[len(metrics):]:
        ax.set_visible(False)
    return fig, list(zip(flat, metrics.items()))


def _finish(fig, title: str):
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

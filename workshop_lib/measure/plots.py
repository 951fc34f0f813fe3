"""Charts the notebooks share, so every lesson shows comparable numbers the same way."""
import matplotlib.pyplot as plt


def plot_metrics(df, metrics: dict, by: str = "role", title: str = ""):
    """One bar panel per metric: the mean per ``by`` group, with min-max whiskers.

    ``metrics`` maps a column to its axis label, e.g. ``{"ttft_s": "TTFT (s)"}``. Taught in 00."""
    fig, panels = _panels(metrics, height=3.4)
    for ax, (column, label) in panels:
        stats = df.groupby(by)[column].agg(["mean", "min", "max"])
        errors = [stats["mean"] - stats["min"], stats["max"] - stats["mean"]]
        ax.bar(stats.index.astype(str), stats["mean"], yerr=errors, capsize=4,
               color=plt.cm.tab10.colors[: len(stats)])
        ax.set_title(label)
    return _finish(fig, panels, title)


def plot_distributions(df, metrics: dict, by: str = "role", title: str = ""):
    """One box plot per metric, a box per ``by`` group, every request drawn as a dot (taught in 03).

    Boxes show the middle half of the requests and the median; dots show what a box hides."""
    fig, panels = _panels(metrics, height=3.6)
    groups = sorted(df[by].dropna().unique())
    for ax, (column, label) in panels:
        data = [df.loc[df[by] == g, column].dropna().astype(float) for g in groups]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(groups) + 1), [str(g) for g in groups])
        for i, values in enumerate(data, start=1):
            ax.plot([i] * len(values), values, ".", alpha=0.5, color=plt.cm.tab10.colors[i - 1])
        ax.set_title(label)
    return _finish(fig, panels, title)


def plot_sweep(levels, requests, by: str = "role"):
    """Aggregate output tokens/s and median request latency against concurrency (taught in 03)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    ok = requests[(requests["status"] == "ok") & requests["concurrency"].notna()]
    for name, group in levels.groupby(by):
        left.plot(group["concurrency"], group["aggregate_tps"], "o-", label=str(name))
        latency = ok[ok[by] == name].groupby("concurrency")["e2e_s"].median()
        right.plot(latency.index, latency.values, "o-", label=str(name))
    levels_seen = sorted(levels["concurrency"].unique())
    for ax, label in ((left, "aggregate output tokens/s"), (right, "median request latency (s)")):
        ax.set_xlabel("concurrent streams")
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels_seen, [str(level) for level in levels_seen])
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def _panels(metrics: dict, height: float):
    """A row of panels, one per metric, paired with ``(column, label)``."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), height), squeeze=False)
    return fig, list(zip(axes[0], metrics.items()))


def _finish(fig, panels, title: str):
    for ax, _ in panels:
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

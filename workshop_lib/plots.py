"""Charts the notebooks share, so every lesson shows comparable numbers the same way."""
import matplotlib.pyplot as plt


def plot_metrics(df, metrics: dict, by: str = "role", title: str = ""):
    """One bar panel per metric: the mean per ``by`` group, with min-max whiskers.

    ``metrics`` maps a column to its axis label, e.g. ``{"ttft_s": "TTFT (s)"}``. Taught in 00."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, (column, label) in zip(axes[0], metrics.items()):
        stats = df.groupby(by)[column].agg(["mean", "min", "max"])
        errors = [stats["mean"] - stats["min"], stats["max"] - stats["mean"]]
        ax.bar(stats.index.astype(str), stats["mean"], yerr=errors, capsize=4,
               color=plt.cm.tab10.colors[: len(stats)])
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

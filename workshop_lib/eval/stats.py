"""Accuracy with honest uncertainty (taught in 02_model_comparison).

Scores are 0/1 per item, so accuracy over n items is a binomial proportion; the Wilson score interval
stays inside 0..1 and behaves at 0/n and n/n, where the textbook ``p +/- 1.96 sqrt(p(1-p)/n)`` does not.
"""
import math

import pandas as pd


def wilson(successes: float, n: int, z: float = 1.96) -> tuple:
    """The Wilson score interval (95 % with z = 1.96) of ``successes`` out of ``n``; (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_table(outcomes: pd.DataFrame, by=("task", "role")) -> pd.DataFrame:
    """Accuracy per group with its sample size and 95 % Wilson interval (only scored outcomes count)."""
    scored = outcomes.dropna(subset=["score"])
    rows = []
    for keys, group in scored.groupby(list(by)):
        n, hits = len(group), float(group["score"].sum())
        lo, hi = wilson(hits, n)
        rows.append({**dict(zip(by, keys if isinstance(keys, tuple) else (keys,))),
                     "n": n, "accuracy": hits / n, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)

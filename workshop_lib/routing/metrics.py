"""How good is a router? Quality against the share sent to the large model (taught in 05_hybrid_routing).

Definitions follow RouteLLM (Ong et al., 2024, ``routellm/evals/evaluate.py``): a router's curve gives
quality at each share of calls to the strong model; with ``weak`` and ``strong`` the qualities of
all-small and all-large,

- PGR(share) = (quality(share) - weak) / (strong - weak), the fraction of the gap recovered;
- APGR = (area under the curve - area under weak) / (area under strong - area under weak), areas taken
  with the trapezoid rule over the curve's shares (0..1 here): 0.5 is what random routing gets;
- share needed for x% of the gap: RouteLLM interpolates the curve (its "CPT"); here the smallest share
  at which the piecewise-linear curve reaches weak + x (strong - weak), which equals it on rising curves.

``bootstrap_apgr`` adds what RouteLLM's tables leave out: how much of an APGR is item noise.
"""
import numpy as np
import pandas as pd

from ..measure.stats import paired_bootstrap
from .routers import SHARES, quality_curve


def apgr(curve: pd.DataFrame, weak: float, strong: float):
    """Average performance gap recovered of ``curve`` (columns ``share``, ``quality``); None when the
    two models score the same (there is no gap to recover)."""
    if np.isclose(strong, weak):
        return None
    c = curve.sort_values("share")
    x, y = c["share"].to_numpy(float), c["quality"].to_numpy(float)
    span = x[-1] - x[0]
    area = np.trapezoid(y, x) if hasattr(np, "trapezoid") else np.trapz(y, x)
    return float((area - weak * span) / ((strong - weak) * span))


def share_for_gap(curve: pd.DataFrame, weak: float, strong: float, fraction: float):
    """The smallest share of large-model calls at which ``curve`` recovers ``fraction`` of the gap
    (linear between points); None if it never does or there is no gap."""
    if strong <= weak:
        return None
    target = weak + fraction * (strong - weak)
    c = curve.sort_values("share")
    x, y = c["share"].to_numpy(float), c["quality"].to_numpy(float)
    for i in range(len(x)):
        if y[i] >= target - 1e-12:
            if i == 0:
                return float(x[0])
            return float(x[i - 1] + (target - y[i - 1]) / (y[i] - y[i - 1]) * (x[i] - x[i - 1]))
    return None


def summarize(name: str, curve: pd.DataFrame, weak: float, strong: float, at: float = None) -> dict:
    """One line per router: APGR, shares for 50 % and 80 % of the gap, and the latency and cost per
    request at its operating point (``at``, a share; default: where it reaches 80 % of the gap, else all-large)."""
    s80 = share_for_gap(curve, weak, strong, 0.8)
    point = at if at is not None else (s80 if s80 is not None else 1.0)
    row = curve.iloc[(curve["share"] - point).abs().argsort().iloc[0]]
    return {"router": name, "APGR": apgr(curve, weak, strong),
            "share_for_50%": share_for_gap(curve, weak, strong, 0.5), "share_for_80%": s80,
            "operating_share": float(row["share"]), "quality": float(row["quality"]),
            "latency_s": float(row.get("latency_s", np.nan)), "cost_per_request": float(row.get("cost", np.nan))}


def bootstrap_apgr(table: pd.DataFrame, needs: dict, differences=(), n_boot: int = 1000, seed: int = 0,
                   shares=SHARES, level: float = 0.95) -> pd.DataFrame:
    """Each router's APGR (``needs``: name -> need per item of ``table``) with a percentile interval from a
    paired bootstrap over items: every draw resamples the items once, and every router, and the all-small and
    all-large baselines, are scored on that same draw. ``differences`` (pairs of names) get intervals of
    ``APGR(a) - APGR(b)``: an interval that excludes 0 is a difference the items can resolve."""
    slm, llm = table["score_slm"].to_numpy(float), table["score_llm"].to_numpy(float)
    needs = {name: np.asarray(need, float) for name, need in needs.items()}

    def statistics(index):
        weak, strong = slm[index].mean(), llm[index].mean()
        values = {name: apgr(quality_curve(slm[index], llm[index], need[index], shares, seed), weak, strong)
                  for name, need in needs.items()}
        for a, b in differences:
            values[f"{a} - {b}"] = None if values[a] is None or values[b] is None else values[a] - values[b]
        return values

    return paired_bootstrap(len(table), statistics, n_boot, seed, level)

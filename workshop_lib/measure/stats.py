"""The statistics every lesson's comparisons rest on (taught in 02, 04 and 05).

- ``wilson``: the interval of one proportion (k right of n);
- ``mcnemar``: two methods on the *same* items, told apart by their discordant items only (exact binomial);
- ``paired_bootstrap``: an interval for any statistic over items, every method resampled on the same items;
- ``cohen_kappa``: agreement of two raters beyond what chance alone gives.

Plain Python and numpy (scipy is not a core dependency); the tests check each against scipy or a worked example.
"""
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


def wilson(successes: float, n: int, z: float = 1.96) -> tuple:
    """The Wilson score interval (95 % with z = 1.96) of ``successes`` out of ``n``; (0, 1) when n = 0.

    It stays inside 0..1 and behaves at 0/n and n/n, where the textbook ``p +/- 1.96 sqrt(p(1-p)/n)`` does not."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class McNemar:
    """``b``: items only the first method got right, ``c``: only the second; ``p``: two-sided exact p value."""
    b: int
    c: int
    p: float


def binomial_two_sided(k: int, n: int) -> float:
    """Two-sided exact p value of ``k`` successes in ``n`` fair coin flips: the probability of an outcome at
    least as far from n/2 (for p = 1/2 this equals doubling the smaller tail, capped at 1)."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def mcnemar(first, second) -> McNemar:
    """Exact McNemar test of two 0/1 score vectors over the same items.

    Items both methods got right, or both wrong, say nothing about which is better; under "no difference" each
    discordant item is equally likely to favour either method, so ``b`` is Binomial(b + c, 1/2)."""
    first, second = np.asarray(first, float), np.asarray(second, float)
    if first.shape != second.shape:
        raise ValueError(f"paired scores need the same items: {first.shape} vs {second.shape}")
    b, c = int(((first > 0.5) & (second < 0.5)).sum()), int(((first < 0.5) & (second > 0.5)).sum())
    return McNemar(b, c, binomial_two_sided(b, b + c))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment for testing several hypotheses at once: the smallest p is multiplied by
    their number m, the next by m - 1 and so on, each kept at least as large as the one before (capped at 1).
    Reject where the adjusted p is below the level: the chance of any false rejection stays at that level."""
    p = np.asarray(p_values, float)
    order = np.argsort(p)
    stepped = np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p))))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def paired_bootstrap(n_items: int, statistics, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Percentile intervals over items for several statistics computed on the *same* resampled items.

    ``statistics(index)`` gets an array of item positions (drawn with replacement) and returns a dict of named
    values (e.g. each router's APGR and their difference); it is called once on ``arange(n_items)`` for the
    estimate and ``n_boot`` times on resamples. Because every statistic of one draw sees the same items, a
    difference's interval is paired: it is narrower than the two separate intervals suggest when the methods
    fail on the same items. Values that are None or NaN in a draw (e.g. no gap to recover) are left out of
    that statistic's interval and counted in ``dropped``."""
    rng = np.random.default_rng(seed)
    estimate = statistics(np.arange(n_items))
    draws = [statistics(rng.integers(0, n_items, n_items)) for _ in range(n_boot)]
    alpha = (1 - level) / 2
    rows = []
    for name, value in estimate.items():
        values = np.array([np.nan if d.get(name) is None else d[name] for d in draws], float)
        kept = values[~np.isnan(values)]
        lo, hi = np.quantile(kept, [alpha, 1 - alpha]) if len(kept) else (np.nan, np.nan)
        rows.append({"statistic": name, "estimate": value, "ci_low": float(lo), "ci_high": float(hi),
                     "dropped": int(len(values) - len(kept))})
    return pd.DataFrame(rows).set_index("statistic")


@dataclass
class Kappa:
    """Cohen's kappa with its parts: ``observed`` agreement and the ``chance`` agreement of two raters who say
    yes as often as these two but independently; ``n`` items."""
    kappa: float
    observed: float
    chance: float
    n: int


def cohen_kappa(first, second) -> Kappa:
    """Cohen's kappa of two raters' labels on the same items: (observed - chance) / (1 - chance).

    1 is perfect agreement, 0 no better than chance; NaN when chance agreement is already 1 (both raters
    gave one label to every item, so agreement says nothing)."""
    first, second = pd.Series(list(first)), pd.Series(list(second))
    if len(first) != len(second) or len(first) == 0:
        raise ValueError(f"kappa needs the same, non-empty items: {len(first)} vs {len(second)}")
    observed = float((first.values == second.values).mean())
    labels = set(first) | set(second)
    chance = float(sum((first == label).mean() * (second == label).mean() for label in labels))
    kappa = (observed - chance) / (1 - chance) if chance < 1 else float("nan")
    return Kappa(kappa, observed, chance, len(first))

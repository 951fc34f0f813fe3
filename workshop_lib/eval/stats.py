"""Accuracy with honest uncertainty (taught in 02_model_comparison).

Scores are 0/1 per item, so accuracy over n items is a binomial proportion with a Wilson interval; two models
answering the same items are compared with the paired (McNemar) test. The statistics themselves live in
``measure.stats``; this module applies them to outcome tables.
"""
import pandas as pd

from ..measure.stats import holm, mcnemar, wilson

__all__ = ["accuracy_table", "failed_mask", "paired_table", "wilson"]


def failed_mask(outcomes: pd.DataFrame) -> pd.Series:
    """True for outcomes whose request failed or timed out (no score): these count as wrong."""
    failed = outcomes["score"].isna()
    return failed | (outcomes["status"] != "ok") if "status" in outcomes else failed


def accuracy_table(outcomes: pd.DataFrame, by=("task", "role")) -> pd.DataFrame:
    """Accuracy per group with its sample size and 95 % Wilson interval.

    A request that failed or timed out has no score; it counts as wrong (leaving it out would flatter a model
    whose server fails on the hard items) and the ``failed`` column says how many of ``n`` that was."""
    failed = failed_mask(outcomes)
    scored = outcomes.assign(score=outcomes["score"].where(~failed, 0.0), failed=failed)
    rows = []
    for keys, group in scored.groupby(list(by)):
        n, hits = len(group), float(group["score"].sum())
        lo, hi = wilson(hits, n)
        rows.append({**dict(zip(by, keys if isinstance(keys, tuple) else (keys,))), "n": n,
                     "failed": int(group["failed"].sum()), "accuracy": hits / n, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def paired_table(outcomes: pd.DataFrame, first: str = "slm", second: str = "llm", by: str = "task") -> pd.DataFrame:
    """The exact McNemar test of two roles on the items both answered, per ``by`` group and over all items:
    ``only_<first>`` / ``only_<second>`` are the discordant items, ``p`` the two-sided p value, ``p_holm`` the
    groups' p values adjusted together for testing several at once (Holm; "all" keeps its own).
    Failed requests count as wrong, as in ``accuracy_table``."""
    scored = outcomes.assign(score=outcomes["score"].where(~failed_mask(outcomes), 0.0))
    wide = scored.pivot_table(index=[by, "item_id"], columns="role", values="score", aggfunc="first")
    wide = wide.dropna(subset=[first, second])  # only items both roles were asked
    groups = [(name, part) for name, part in wide.groupby(level=0)] + [("all", wide)]
    rows = []
    for name, part in groups:
        test = mcnemar(part[first], part[second])
        rows.append({by: name, "n": len(part), f"only_{first}": test.b, f"only_{second}": test.c, "p": test.p})
    table = pd.DataFrame(rows)
    groups_only = table[by] != "all"  # one test per group: Holm-adjusted together; "all" is a test of its own
    table.loc[groups_only, "p_holm"] = holm(table.loc[groups_only, "p"])
    table.loc[~groups_only, "p_holm"] = table.loc[~groups_only, "p"]
    return table

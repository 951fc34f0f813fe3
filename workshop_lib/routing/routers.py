"""Routers evaluated over cached outcomes, RouteLLM's method (taught in 05_hybrid_routing).

Every item has been answered once by each model (and checked by the cheap verifiers), so a router is
just a score per item, "how much does this one need the large model". Sending the top ``k`` items by
that score to the large model, for k = 0 .. n, traces the router's quality against the share sent
to the large model, in milliseconds and without a single new request. Ties are broken at random
(seeded), so a yes/no router such as a cascade traces the mix of its operating point with random routing.
"""
import re

import numpy as np
import pandas as pd

SHARES = np.linspace(0, 1, 11)


def outcome_table(outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per item from greedy outcomes (one row per item and role): ``score_slm``, ``score_llm``,
    ``e2e_s_slm`` ... and the task and prompt, in the items' order."""
    greedy = outcomes[outcomes["variant"] == "greedy"].copy()
    # a failed request is a wrong answer, as lesson 02 counts it: dropping the item would flatter that model
    greedy["score"] = greedy["score"].where(greedy["status"] == "ok", 0.0)
    wide = greedy.pivot_table(index="item_id", columns="role", aggfunc="first",
                              values=["score", "e2e_s", "ttft_s", "completion_tokens", "prompt_tokens", "text", "truncated"])
    wide.columns = [f"{field}_{role}" for field, role in wide.columns]
    wide = wide.dropna(subset=["score_slm", "score_llm"])
    first = greedy.drop_duplicates("item_id").set_index("item_id")["task"]
    return wide.join(first).join(check_calls(outcomes)).fillna({c: 0 for c in CHECK_COLUMNS}).reset_index()


CHECK_COLUMNS = ("check_calls", "check_e2e_s", "check_prompt_tokens", "check_completion_tokens")


def check_calls(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per item, the model calls a cascade's verifier makes: the small model's extra sampled answers
    (math self-consistency), counted and summed (their seconds and tokens), so a cascade pays for them."""
    extra = outcomes[(outcomes["variant"] == "sample") & (outcomes["status"] == "ok")]
    grouped = extra.groupby("item_id")
    return pd.DataFrame({"check_calls": grouped.size(), "check_e2e_s": grouped["e2e_s"].sum(),
                         "check_prompt_tokens": grouped["prompt_tokens"].sum(min_count=0),
                         "check_completion_tokens": grouped["completion_tokens"].sum(min_count=0)},
                        columns=list(CHECK_COLUMNS))


def route_top(table: pd.DataFrame, need: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """Which items go to the large model: the ``share`` with the highest ``need`` (ties at random)."""
    n = len(table)
    tiebreak = np.random.default_rng(seed).random(n)
    order = np.lexsort((tiebreak, -np.asarray(need, float)))
    sent = np.zeros(n, bool)
    sent[order[:int(round(share * n))]] = True
    return sent


def curve(table: pd.DataFrame, need, cost_fn, shares=SHARES, seed: int = 0, always_small: bool = False) -> pd.DataFrame:
    """Quality, latency and cost per request at each share. ``cost_fn(table, sent, always_small)`` gives
    ``(latency_s, cost)`` per item; ``always_small``: the small model answers every request first and its
    verifier runs (a cascade), so both are paid on every request (``costs.CostModel`` counts every call)."""
    rows = []
    for share in shares:
        sent = route_top(table, need, share, seed)
        quality = routed_quality(table["score_slm"], table["score_llm"], sent)
        latency, cost = cost_fn(table, sent, always_small)
        rows.append({"share": sent.mean(), "quality": quality, "latency_s": latency.mean(), "cost": cost.mean()})
    return pd.DataFrame(rows)


def routed_quality(score_slm, score_llm, sent) -> float:
    """Mean score when the ``sent`` items are answered by the large model and the rest by the small one."""
    return float(np.where(sent, np.asarray(score_llm, float), np.asarray(score_slm, float)).mean())


def quality_curve(score_slm, score_llm, need, shares=SHARES, seed: int = 0) -> pd.DataFrame:
    """Only the quality at each share (what APGR needs): arrays in, no latency or cost."""
    rows = [(sent.mean(), routed_quality(score_slm, score_llm, sent))
            for sent in (route_top(score_slm, need, share, seed) for share in shares)]
    return pd.DataFrame(rows, columns=["share", "quality"])


def random_need(table: pd.DataFrame, seed: int) -> np.ndarray:
    """The random router: a coin per item."""
    return np.random.default_rng(1000 + seed).random(len(table))


CODE_WORDS = re.compile(r"```|\bdef\b|\bfunction\b|\bpython\b|\bcode\b|\bimplement", re.I)
MATH_WORDS = re.compile(r"\bhow many\b|\bhow much\b|\btotal\b|\bcalculate\b|\bpercent|\$\d|\d+\s*%|\bsolve\b", re.I)


def rule_need(prompt: str) -> float:
    """A hand-written rule: code and arithmetic go to the large model first, then longer prompts
    (keywords name what small models find hardest; length alone is a weaker signal)."""
    score = 2.0 * bool(CODE_WORDS.search(prompt)) + 1.0 * bool(MATH_WORDS.search(prompt))
    return score + min(len(prompt), 4000) / 4000


def cascade_need(table: pd.DataFrame, verdicts: pd.Series) -> np.ndarray:
    """A cascade: the small model answers, a cheap verifier checks; failed checks escalate first.
    ``verdicts`` maps item_id to True (passed), False (failed) or None (no check possible: escalate
    after the failures)."""
    v = table["item_id"].map(verdicts)
    return np.where(v == True, 0.0, np.where(v == False, 2.0, 1.0))  # noqa: E712 (values may be None)


def cascade_point(table: pd.DataFrame, verdicts: pd.Series) -> float:
    """The share a cascade escalates by itself: the items whose check failed or could not run."""
    v = table["item_id"].map(verdicts)
    return float((v != True).mean())  # noqa: E712

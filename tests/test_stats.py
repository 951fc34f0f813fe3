"""workshop_lib.measure.stats and its uses: Wilson, exact McNemar, the paired bootstrap, Cohen's kappa,
accuracy that counts failed requests, APGR intervals and a cascade's cost (checked against scipy and worked
examples)."""
import numpy as np
import pandas as pd
import pytest

binomtest = pytest.importorskip("scipy.stats", reason="needs the test extra: python -m workshop_lib "
                                                  "require test").binomtest

from workshop_lib import eval as wle
from workshop_lib.eval import stats as eval_stats
from workshop_lib.measure import stats
from workshop_lib.routing import costs, metrics, routers


def test_wilson_moved_and_still_importable_from_eval():
    assert wle.wilson is eval_stats.wilson is stats.wilson
    lo, hi = stats.wilson(4, 5)  # lesson 04's refusal check: 4 of 5
    assert lo == pytest.approx(0.376, abs=1e-3) and hi == pytest.approx(0.964, abs=1e-3)


@pytest.mark.parametrize("b, c", [(13, 4), (13, 3), (17, 12), (8, 5), (51, 24), (0, 0), (5, 5), (0, 9), (1, 30)])
def test_mcnemar_is_scipys_exact_two_sided_binomial_on_the_discordant_pairs(b, c):
    first = [1] * b + [0] * c + [1] * 7 + [0] * 3  # 7 both right and 3 both wrong: they must not matter
    second = [0] * b + [1] * c + [1] * 7 + [0] * 3
    test = stats.mcnemar(first, second)
    assert (test.b, test.c) == (b, c)
    want = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert test.p == pytest.approx(want, rel=1e-12)


def test_mcnemar_reproduces_the_issues_figures():
    assert stats.mcnemar([1] * 13 + [0] * 4, [0] * 13 + [1] * 4).p == pytest.approx(0.049, abs=5e-4)
    assert stats.mcnemar([1] * 51 + [0] * 24, [0] * 51 + [1] * 24).p == pytest.approx(0.002, abs=5e-4)
    with pytest.raises(ValueError):
        stats.mcnemar([1, 0], [1])


def test_cohen_kappa_on_a_hand_checked_two_by_two():
    # 27 answers: both say correct 13, only the judge 9, only the strings 1, both say wrong 4
    judge = [True] * 13 + [True] * 9 + [False] * 1 + [False] * 4
    strings = [True] * 13 + [False] * 9 + [True] * 1 + [False] * 4
    k = stats.cohen_kappa(judge, strings)
    chance = (22 / 27) * (14 / 27) + (5 / 27) * (13 / 27)
    assert k.observed == pytest.approx(17 / 27) and k.chance == pytest.approx(chance) and k.n == 27
    assert k.kappa == pytest.approx((17 / 27 - chance) / (1 - chance)) and k.kappa == pytest.approx(0.2415, abs=1e-3)


def test_cohen_kappa_matches_sklearn_and_its_edges():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 3, 80), rng.integers(0, 3, 80)
    b[:40] = a[:40]
    assert stats.cohen_kappa(a, b).kappa == pytest.approx(sklearn.cohen_kappa_score(a, b))
    assert stats.cohen_kappa([1, 0, 1], [1, 0, 1]).kappa == pytest.approx(1.0)
    assert np.isnan(stats.cohen_kappa([1, 1], [1, 1]).kappa)


def test_paired_bootstrap_is_seeded_and_covers_the_true_mean():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(100):
        x = rng.random(60) < 0.3  # true mean 0.3
        table = stats.paired_bootstrap(60, lambda i: {"mean": x[i].mean()}, n_boot=300, seed=trial)
        covered += table.loc["mean", "ci_low"] <= 0.3 <= table.loc["mean", "ci_high"]
    assert 88 <= covered <= 99  # a 95 % interval: about 95 of 100 (percentile intervals run a little short)
    again = [stats.paired_bootstrap(60, lambda i: {"mean": x[i].mean()}, n_boot=50, seed=7) for _ in range(2)]
    pd.testing.assert_frame_equal(*again)


def test_paired_bootstrap_gives_every_statistic_the_same_items():
    x = np.arange(40, dtype=float)
    table = stats.paired_bootstrap(40, lambda i: {"a": x[i].mean(), "b": x[i].mean() + 1,
                                                  "a - b": x[i].mean() - (x[i].mean() + 1)}, n_boot=200)
    # paired: the difference is exactly -1 in every draw, though a and b each vary by several units
    assert table.loc["a - b", "ci_low"] == pytest.approx(-1) == table.loc["a - b", "ci_high"]
    assert table.loc["a", "ci_high"] - table.loc["a", "ci_low"] > 5


def test_paired_bootstrap_leaves_out_undefined_draws_and_counts_them():
    table = stats.paired_bootstrap(10, lambda i: {"x": None if 0 in i else 1.0}, n_boot=100, seed=1)
    assert 0 < table.loc["x", "dropped"] < 100 and table.loc["x", "ci_low"] == 1.0


def outcome_rows(task, role, scores, status=None):
    return [{"task": task, "role": role, "item_id": f"{task}{k}", "score": s,
             "status": (status or ["ok"] * len(scores))[k]} for k, s in enumerate(scores)]


def test_accuracy_counts_failed_requests_as_wrong_and_reports_them():
    rows = outcome_rows("math", "slm", [1.0, 1.0, None, None], ["ok", "ok", "timeout", "error"])
    table = eval_stats.accuracy_table(pd.DataFrame(rows)).iloc[0]
    assert table["n"] == 4 and table["failed"] == 2 and table["accuracy"] == 0.5
    assert (table["ci_low"], table["ci_high"]) == stats.wilson(2, 4)


def test_paired_table_tests_each_task_and_all_items():
    rows = (outcome_rows("code", "slm", [1, 0, 0, 1]) + outcome_rows("code", "llm", [1, 1, 1, 0])
            + outcome_rows("math", "slm", [0, 0]) + outcome_rows("math", "llm", [1, None], ["ok", "timeout"]))
    table = eval_stats.paired_table(pd.DataFrame(rows)).set_index("task")
    assert table.loc["code", ["n", "only_slm", "only_llm"]].tolist() == [4, 1, 2]
    assert table.loc["math", ["n", "only_slm", "only_llm"]].tolist() == [2, 0, 1]  # the timeout counts as wrong
    assert table.loc["all", ["n", "only_slm", "only_llm"]].tolist() == [6, 1, 3]
    assert table.loc["all", "p"] == pytest.approx(binomtest(1, 4).pvalue)


def routed_table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    slm = (rng.random(n) < 0.3).astype(float)
    llm = np.maximum(slm, rng.random(n) < 0.5).astype(float)
    return pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "score_slm": slm, "score_llm": llm})


def test_bootstrap_apgr_estimates_each_router_and_resolves_an_oracle_from_random():
    table = routed_table()
    oracle = (table["score_llm"] > table["score_slm"]).to_numpy(float)
    coin = routers.random_need(table, 0)
    result = metrics.bootstrap_apgr(table, {"oracle": oracle, "random": coin}, [("oracle", "random")], n_boot=200)
    curve = routers.curve(table, oracle, lambda t, s, a: (np.ones(len(t)), np.zeros(len(t))))
    assert result.loc["oracle", "estimate"] == pytest.approx(metrics.apgr(curve, table["score_slm"].mean(),
                                                                         table["score_llm"].mean()))
    assert result.loc["oracle - random", "ci_low"] > 0  # the difference the items can resolve
    assert result.loc["random", "ci_low"] < 0.5 < result.loc["random", "ci_high"]


def cascade_table():
    return pd.DataFrame({"item_id": ["m1", "k1"], "task": ["math", "knowledge"], "score_slm": [1.0, 0.0],
                         "score_llm": [1.0, 1.0], "e2e_s_slm": [20.0, 1.0], "e2e_s_llm": [50.0, 2.0],
                         "prompt_tokens_llm": [100.0, 50.0], "completion_tokens_llm": [200.0, 1.0],
                         "check_calls": [1, 0], "check_e2e_s": [25.0, 0.0]})


def test_a_cascade_pays_for_its_verifiers_model_calls():
    model = costs.CostModel(watts=36.0, per_kwh=0.1)  # 36 W: 1e-6 USD per second
    latency, usd = model(cascade_table(), np.array([False, True]), always_small=True)
    assert latency.tolist() == pytest.approx([20 + 25, 1 + 2])  # math: answer, then a second full answer
    assert usd.tolist() == pytest.approx([45e-6, 3e-6])
    plain, _ = model(cascade_table(), np.array([False, True]), always_small=False)  # other routers: no verifier
    assert plain.tolist() == pytest.approx([20, 2])


def test_the_large_model_is_priced_on_its_own_tokens_only_when_asked():
    price = {"input_per_million": 1.0, "output_per_million": 10.0}
    _, usd = costs.CostModel(36.0, 0.1, large_price=price)(cascade_table(), np.array([True, True]))
    assert usd.tolist() == pytest.approx([(100 + 2000) / 1e6, (50 + 10) / 1e6])


def test_the_outcome_table_carries_the_verifiers_calls():
    rows = []
    for role, e2e in (("slm", 20.0), ("llm", 50.0)):
        for item, task in (("m1", "math"), ("k1", "knowledge")):
            rows.append({"item_id": item, "task": task, "role": role, "variant": "greedy", "status": "ok",
                         "score": 1.0, "e2e_s": e2e, "ttft_s": 0.1, "completion_tokens": 9, "prompt_tokens": 9,
                         "text": "x", "truncated": False})
    rows.append({**rows[0], "variant": "sample", "e2e_s": 25.0, "completion_tokens": 150})
    table = routers.outcome_table(pd.DataFrame(rows)).set_index("item_id")
    assert table.loc["m1", ["check_calls", "check_e2e_s", "check_completion_tokens"]].tolist() == [1, 25.0, 150]
    assert table.loc["k1", ["check_calls", "check_e2e_s"]].tolist() == [0, 0.0]


def test_a_failed_request_stays_in_the_outcome_table_as_a_wrong_answer():
    rows = [{"item_id": "k1", "task": "knowledge", "role": role, "variant": "greedy", "status": status,
             "score": score, "e2e_s": 1.0, "ttft_s": 0.1, "completion_tokens": 9, "prompt_tokens": 9, "text": "x",
             "truncated": False} for role, status, score in (("slm", "ok", 1.0), ("llm", "error", None))]
    table = routers.outcome_table(pd.DataFrame(rows)).set_index("item_id")
    assert table.loc["k1", ["score_slm", "score_llm"]].tolist() == [1.0, 0.0]


def test_holm_on_a_worked_example():
    """Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; each at least the one before."""
    assert stats.holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.6]).tolist() == pytest.approx([1.0, 1.0])  # capped at 1


def test_the_paired_tables_per_task_tests_are_adjusted_together_and_all_items_is_not():
    table = eval_stats.paired_table(wle.load_outcomes(wle.SHIPPED).query("variant == 'greedy'"))
    p = table.set_index("task")
    assert p.loc["code", "p"] < 0.05 and p.loc["math", "p"] < 0.05  # each alone looks told apart ...
    assert (p.drop("all")["p_holm"] > 0.05).all()  # ... but not once four tests are counted
    assert p.loc["all", "p_holm"] == p.loc["all", "p"] < 0.01

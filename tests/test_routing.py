"""workshop_lib.routing: curves, APGR, routers, the learned router's split, fallback."""
import numpy as np
import pandas as pd
import pytest
from openai import OpenAI

from workshop_lib.routing import fallback, learned, metrics, routers, verifiers
from workshop_lib.runtime import server


def table(slm, llm):
    n = len(slm)
    return pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "task": ["math"] * n, "score_slm": slm,
                         "score_llm": llm, "e2e_s_slm": [1.0] * n, "e2e_s_llm": [3.0] * n})


def cost(t, sent, always_small):
    small = np.ones(len(t), bool) if always_small else ~sent
    return np.where(small, 1.0, 0) + np.where(sent, 3.0, 0), np.where(sent, 0.01, 0.0)


def test_apgr_of_the_straight_line_is_a_half_and_of_the_oracle_more():
    line = pd.DataFrame({"share": [0, 0.5, 1], "quality": [0.2, 0.5, 0.8]})
    assert metrics.apgr(line, 0.2, 0.8) == pytest.approx(0.5)
    best = pd.DataFrame({"share": [0, 0.5, 1], "quality": [0.2, 0.8, 0.8]})
    assert metrics.apgr(best, 0.2, 0.8) == pytest.approx(0.75)
    assert metrics.apgr(line, 0.5, 0.5) is None


def test_share_for_gap_interpolates():
    line = pd.DataFrame({"share": [0, 0.5, 1], "quality": [0.2, 0.5, 0.8]})
    assert metrics.share_for_gap(line, 0.2, 0.8, 0.5) == pytest.approx(0.5)
    assert metrics.share_for_gap(line, 0.2, 0.8, 0.8) == pytest.approx(0.8)
    flat = pd.DataFrame({"share": [0, 1], "quality": [0.2, 0.2]})
    assert metrics.share_for_gap(flat, 0.2, 0.8, 0.5) is None


def test_an_oracle_router_recovers_the_gap_with_the_fewest_calls():
    t = table([1, 0, 1, 0], [1, 1, 1, 1])
    oracle = (t["score_llm"] > t["score_slm"]).to_numpy(float)
    c = routers.curve(t, oracle, cost, shares=np.linspace(0, 1, 5))
    assert c["quality"].tolist() == [0.5, 0.75, 1.0, 1.0, 1.0]
    assert metrics.share_for_gap(c, 0.5, 1.0, 1.0) == pytest.approx(0.5)
    assert c["latency_s"].iloc[0] == 1.0 and c["latency_s"].iloc[-1] == 3.0


def test_a_cascade_pays_the_small_model_on_every_request():
    t = table([1, 0], [1, 1])
    verdicts = pd.Series({"i0": True, "i1": False})
    need = routers.cascade_need(t, verdicts)
    assert routers.cascade_point(t, verdicts) == 0.5
    c = routers.curve(t, need, cost, shares=[0, 0.5, 1], always_small=True)
    assert c["quality"].tolist() == [0.5, 1.0, 1.0] and c["latency_s"].tolist() == [1.0, 2.5, 4.0]


def test_rule_router_prefers_code_then_math():
    assert routers.rule_need("```python\ndef f(): ...```") > routers.rule_need("How many apples in total?") > \
        routers.rule_need("Name a colour.")


def test_learned_router_split_is_disjoint_and_stratified():
    tasks = ["code"] * 10 + ["math"] * 6
    mask = learned.split(range(16), tasks, 0.5, seed=1)
    assert mask[:10].sum() == 5 and mask[10:].sum() == 3
    prompts = ["```python\ndef f(x):```"] * 8 + ["Name a colour."] * 8
    labels = [1] * 8 + [0] * 8
    need = learned.LogisticRouter().fit(prompts, labels).need(["```python\ndef g(y):```", "Name a fruit."])
    assert need[0] > 0.5 > need[1]


def test_verifiers_never_need_the_reference():
    assert verifiers.verify("math", "Answer: 4", {}, samples=["so 4"]) is True
    assert verifiers.verify("math", "Answer: 4", {}, samples=["Answer: 5"]) is False
    assert verifiers.verify("knowledge", "B", {}) is True
    assert verifiers.verify("knowledge", "I think A. or maybe C. who knows, it depends on a lot", {}) is False
    assert verifiers.verify("instructions", "text", {}, truncated=True) is False


def test_fallback_moves_on_from_a_dead_server_and_reports_why():
    dead = server.find_free_port() if hasattr(server, "find_free_port") else server.choose_port()
    client = OpenAI(base_url=f"http://127.0.0.1:{dead}/v1", api_key="x", max_retries=0)
    chain = [fallback.Endpoint("a", client, "m", 2), fallback.Endpoint("b", client, "m", 2)]
    row = fallback.ask(chain, [{"role": "user", "content": "hi"}], max_tokens=4)
    assert row["served_by"] is None and row["failures"].startswith("a: ") and "; b: " in row["failures"]


def test_registry_alias_maps_foundry_style_ids():
    assert fallback.registry_alias("qwen2.5-coder-0.5b-instruct-generic-cpu:4") == "qwen2.5-coder-0.5b"
    assert fallback.registry_alias("qwen2.5-coder-1.5b") == "qwen2.5-coder-1.5b"

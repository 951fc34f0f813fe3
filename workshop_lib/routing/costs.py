"""What a routed request costs, counting every call a router makes (taught in 05_hybrid_routing).

Latency and tokens are the ones measured in the outcome table: both models ran locally. The small model's
calls cost electricity (``eval.costs.local_cost``). The large model's calls cost electricity too, unless a
``large_price`` row of ``data/prices.json`` is given: then its *own* token counts are billed at that list price,
an assumption about what the same traffic would cost, never a measured cloud model (a cloud model would give
other answers, other token counts and another latency).
"""
from dataclasses import dataclass

import numpy as np

from ..eval import costs


@dataclass
class CostModel:
    """``cost_model(table, sent, always_small)`` -> ``(latency_s, cost)`` per item, the ``cost_fn`` of
    ``routers.curve``. ``always_small``: a cascade, which pays the small model *and its verifier's calls*
    (``check_*`` columns of ``routers.outcome_table``) on every request, then the large model on ``sent``."""
    watts: float
    per_kwh: float
    large_price: dict = None

    def small(self, table) -> tuple:
        seconds = table["e2e_s_slm"].to_numpy(float)
        return seconds, costs.local_cost(seconds, self.watts, self.per_kwh)

    def check(self, table) -> tuple:
        """The verifier's model calls (math self-consistency: another full small-model answer); 0 elsewhere."""
        seconds = table["check_e2e_s"].to_numpy(float) if "check_e2e_s" in table else np.zeros(len(table))
        return seconds, costs.local_cost(seconds, self.watts, self.per_kwh)

    def large(self, table) -> tuple:
        seconds = table["e2e_s_llm"].to_numpy(float)
        if self.large_price is None:
            return seconds, costs.local_cost(seconds, self.watts, self.per_kwh)
        billed = costs.cloud_cost(table["prompt_tokens_llm"].fillna(0).to_numpy(float),
                                  table["completion_tokens_llm"].to_numpy(float), self.large_price)
        return seconds, billed

    def __call__(self, table, sent, always_small: bool = False) -> tuple:
        sent = np.asarray(sent, bool)
        small_s, small_usd = self.small(table)
        if always_small:  # the verifier runs after the small answer, before deciding: in series
            check_s, check_usd = self.check(table)
            small_s, small_usd = small_s + check_s, small_usd + check_usd
        large_s, large_usd = self.large(table)
        pay_small = np.ones(len(sent), bool) if always_small else ~sent
        latency = np.where(pay_small, small_s, 0) + np.where(sent, large_s, 0)
        return latency, np.where(pay_small, small_usd, 0) + np.where(sent, large_usd, 0)

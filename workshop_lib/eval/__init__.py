"""Evaluating models on real benchmark items (lessons 02_model_comparison and 05_hybrid_routing).

``data`` loads seeded samples of four task types from pinned PyPI packages, ``scoring`` scores a reply
0..1, ``cache`` keeps every outcome on disk, ``runner`` runs samples through the models, ``stats``
summarises them with confidence intervals and the paired test.
"""
from . import cache, costs, data, runner, scoring, stats
from .cache import OutcomeCache, load_outcomes
from .data import TASKS, cap_tokens, find_items, sample, sample_all
from .runner import draft_then_refine, evaluate, self_consistency
from .stats import accuracy_table, paired_table, wilson
from ..config import DATA_DIR, RESULTS_DIR

SHIPPED = DATA_DIR / "eval" / "outcomes.jsonl"  # the full run, made by `python -m workshop_lib.eval run --full`
LEARNER_CACHE = RESULTS_DIR / "eval" / "outcomes.jsonl"  # what your own runs add (ignored by git)

__all__ = ["LEARNER_CACHE", "OutcomeCache", "SHIPPED", "TASKS", "accuracy_table", "cache", "cap_tokens", "costs",
           "data", "draft_then_refine", "evaluate", "find_items", "load_outcomes", "paired_table", "runner", "sample",
           "sample_all", "scoring", "self_consistency", "stats", "wilson"]

"""Routing requests between a small and a large model (lesson 05_hybrid_routing).

``routers`` turns cached outcomes into quality-vs-share curves (baselines, rules, cascades), ``learned``
trains a router on some items and tests it on the others, ``verifiers`` are a cascade's cheap checks,
``metrics`` computes RouteLLM's APGR (with bootstrap intervals) and the share needed for part of the gap,
``costs`` prices every call a router makes, ``fallback`` keeps answering when a server fails.
"""
from . import costs, fallback, learned, metrics, routers, verifiers
from .metrics import apgr, bootstrap_apgr, share_for_gap, summarize

__all__ = ["apgr", "bootstrap_apgr", "costs", "fallback", "learned", "metrics", "routers", "share_for_gap",
           "summarize", "verifiers"]

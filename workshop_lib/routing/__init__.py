"""Routing requests between a small and a large model (lesson 05_hybrid_routing).

``routers`` turns cached outcomes into quality-vs-share curves (baselines, rules, cascades), ``learned``
trains a router on some items and tests it on the others, ``verifiers`` are a cascade's cheap checks,
``metrics`` computes RouteLLM's APGR and the share needed for part of the gap, ``fallback`` keeps
answering when a server fails.
"""
from . import fallback, learned, metrics, routers, verifiers
from .metrics import apgr, share_for_gap, summarize

__all__ = ["apgr", "fallback", "learned", "metrics", "routers", "share_for_gap", "summarize", "verifiers"]

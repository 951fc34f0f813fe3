"""Lesson 04's exercise judges reject plausible wrong answers with a helpful message (unit tests, no server)."""
import runpy
from pathlib import Path

import pytest

from workshop_lib.exercises import lesson04
from workshop_lib.rag import Chunk

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"


def reference_fuse():
    return runpy.run_path(str(SOLUTIONS / "04-rrf.py"))["my_fuse"]


def test_the_reference_fusion_passes():
    assert lesson04.judge_fusion(reference_fuse()) is None


def test_fusing_raw_scores_is_rejected_and_named():
    message = lesson04.judge_fusion(lesson04._summed_scores)  # the mistake the judge's own hint describes
    assert message and "scores" in message and "rank" in message


def test_forgetting_k_is_rejected_and_named():
    def without_k(rankings, weights, k):
        return reference_fuse()(rankings, weights, 0)
    message = lesson04.judge_fusion(without_k)
    assert message and "k" in message and "ignore" in message


def test_ranks_from_zero_and_worst_first_are_rejected():
    def from_zero(rankings, weights, k):
        return reference_fuse()(rankings, weights, k - 1) if k else reference_fuse()(rankings, weights, k)
    assert "start at 0" in lesson04.judge_fusion(from_zero)
    assert "best first" in lesson04.judge_fusion(lambda r, w, k: reference_fuse()(r, w, k)[::-1])


def test_a_crashing_fusion_says_which_case():
    message = lesson04.judge_fusion(lambda r, w, k: 1 / 0)
    assert message.startswith("case 1") and "ZeroDivisionError" in message


def test_an_unwritten_fusion_is_left_to_the_framework():
    def unwritten(rankings, weights, k):
        raise NotImplementedError("write this")
    with pytest.raises(NotImplementedError):
        lesson04.judge_fusion(unwritten)


def test_smallest_k_judge(monkeypatch):
    gold = Chunk("a.md#0", "a.md", "A", "x")
    other = Chunk("b.md#0", "b.md", "B", "y")
    items = [{"id": str(n), "question": str(n), "support": [{"path": "a.md", "heading": "A"}]} for n in range(4)]
    # The gold chunk at rank 1, 2, 3 and 3: recall@k is 0.25, 0.5, 1.0 at k = 1, 2, 3.
    ranks = {"0": 1, "1": 2, "2": 3, "3": 3}
    monkeypatch.setattr("workshop_lib.rag.retrieve", lambda q, k, index: [
        (gold if r == ranks[q] else other, 0.5) for r in range(1, k + 1)])
    judge = lesson04.judge_smallest_k(items, index=None)
    assert judge(3) is None
    assert "larger" in judge(2)
    assert "smaller" in judge(4)
    assert "int" in judge(3.0)

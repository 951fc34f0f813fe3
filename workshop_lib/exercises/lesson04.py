"""Judges for lesson 04's exercises (04_rag). Expected values come from the library (``rag.fuse``,
``rag.retrieve``, ``evaluate.recall_at_k``), never from a formula written here or in the notebook."""
import math

from ..rag import evaluate, fuse

# Rankings as retrievers return them: [(chunk number, score)], best first. Case 2's BM25 scores are far
# larger than its cosines, so summing scores and fusing ranks disagree about the winner.
FUSION_CASES = [
    ([[(1, 9.0), (2, 5.0)], [(2, 0.9), (3, 0.5)]], [1.0, 1.0], 60),
    ([[(7, 30.0), (8, 1.0), (9, 0.5)], [(8, 0.9), (9, 0.8), (7, 0.1)]], [0.5, 1.0], 10),
    ([[(4, 3.0), (5, 2.0), (6, 1.0)], [(6, 0.7), (5, 0.6)]], [1.0, 0.9], 0),
    ([[(1, 2.0)], [(1, 0.3), (2, 0.2)], [(3, 0.9), (1, 0.1)]], [1.0, 2.0, 1.0], 10),
]


def _summed_scores(rankings, weights, k):
    """A plausible mistake: adding the retrievers' own scores, which live on different scales."""
    total = {}
    for ranking, weight in zip(rankings, weights):
        for i, score in ranking:
            total[i] = total.get(i, 0.0) + weight * score
    return sorted(total.items(), key=lambda item: -item[1])


def _same(got, want) -> bool:
    """Same chunks in the same order with the same scores (to 6 significant digits)."""
    try:
        pairs = [(int(i), float(s)) for i, s in got]
    except (TypeError, ValueError):
        return False
    return (len(pairs) == len(want) and [i for i, _ in pairs] == [i for i, _ in want]
            and all(math.isclose(s, w, rel_tol=1e-6, abs_tol=1e-12) for (_, s), (_, w) in zip(pairs, want)))


def judge_fusion(my_fuse):
    """None when ``my_fuse(rankings, weights, k)`` agrees with ``rag.fuse`` on every case, else what is wrong."""
    for n, (rankings, weights, k) in enumerate(FUSION_CASES, start=1):
        want = fuse(rankings, weights, k)
        try:
            got = my_fuse(rankings, weights, k)
        except NotImplementedError:
            raise
        except Exception as exc:  # a learner's bug: say where, keep the lesson running
            return f"case {n} (k={k}, weights {weights}) raised {type(exc).__name__}: {exc}"
        if _same(got, want):
            continue
        if _same(got, _summed_scores(rankings, weights, k)):
            return (f"case {n}: your function adds the retrievers' scores. BM25 scores and cosines live on "
                    "different scales; reciprocal-rank fusion uses only each chunk's rank in each list.")
        if k and _same(got, fuse(rankings, weights, 0)):
            return f"case {n}: your scores ignore k (here k={k}); k is added to every rank before dividing."
        if k and _same(got, fuse(rankings, weights, k - 1)):
            return f"case {n}: your ranks start at 0; the best chunk of a ranking has rank 1."
        if sorted(map(tuple, got or [])) == sorted(want):
            return f"case {n}: the right scores, but return them best first (highest fused score first)."
        return (f"case {n} (k={k}, weights {weights}): expected the chunks in the order {[i for i, _ in want]} "
                f"with a top score of {want[0][1]:.4f}; got {got!r:.120}. Every chunk that appears in any "
                "ranking must be in the result, each once.")
    return None


def smallest_k(items, index, target: float = 0.75, deepest: int = 20) -> int:
    """The smallest k at which hybrid retrieval's mean recall@k on ``items`` reaches ``target``."""
    from ..rag import retrieve
    ranked = [(item, retrieve(item["question"], k=deepest, index=index)) for item in items]
    for k in range(1, deepest + 1):
        if sum(evaluate.recall_at_k(hits[:k], item) for item, hits in ranked) / len(ranked) >= target:
            return k
    return deepest + 1


def judge_smallest_k(items, index, target: float = 0.75):
    """A judge for ``my_k``: the smallest k whose recall@k on ``items`` reaches ``target``."""
    expected = smallest_k(items, index, target)

    def judge(my_k):
        if not isinstance(my_k, int) or isinstance(my_k, bool):
            return f"my_k should be a whole number of chunks (an int), not {type(my_k).__name__}"
        if my_k < expected:
            return f"at k = {my_k} recall is still below {target:.0%}: try a larger k"
        if my_k > expected:
            return f"k = {my_k} reaches {target:.0%}, but a smaller k already does: look for the smallest"
        return None
    return judge

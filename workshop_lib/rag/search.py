"""Three retrievers over one index: BM25, dense, and their reciprocal-rank fusion (taught in 04_rag)."""
import numpy as np

from .index import default_index, embed_query, tokenize

METHODS = ("bm25", "dense", "hybrid")
RRF_K = 10         # the literature's 60 flattens ranks more; 10 did better on lesson 04's questions
BM25_WEIGHT = 0.5  # paraphrased questions share few words with the docs, so BM25 gets half a vote
POOL = 50          # fuse deeper lists than we return, so a chunk ranked 8th by both can win


def bm25_ranking(index, question: str, n: int) -> list:
    """``[(chunk number, BM25 score)]``, best first, scores above zero only."""
    docs, scores = index.bm25.retrieve(tokenize([question]), k=min(n, len(index.chunks)), show_progress=False)
    return [(int(d), float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]


def dense_ranking(index, question: str, n: int) -> list:
    """``[(chunk number, cosine similarity)]``, best first."""
    sims = index.vectors @ embed_query(question)
    best = np.argsort(-sims)[:n]
    return [(int(i), float(sims[i])) for i in best]


def fuse(rankings: list, weights: list = None, k: int = RRF_K) -> list:
    """Reciprocal-rank fusion: each ranking adds weight/(k + rank) to a chunk; only ranks count, not
    scores, so BM25's unbounded scores and cosines in [-1, 1] mix without any scaling."""
    fused = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings)):
        for rank, (i, _score) in enumerate(ranking, start=1):
            fused[i] = fused.get(i, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: -item[1])


def retrieve(question: str, k: int = 5, method: str = "hybrid", index=None, rrf_k: int = None,
             bm25_weight: float = None) -> list:
    """The ``k`` best chunks for ``question`` as ``[(Chunk, score)]`` (taught in 04_rag).

    Scores: BM25 for "bm25"; cosine similarity for "dense" and also for "hybrid", which ranks by the
    fused ranks but reports each chunk's cosine, because that is what says whether anything relevant
    was found (see ``is_relevant``). ``rrf_k`` and ``bm25_weight`` override the fusion's settings."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    index = index or default_index()
    pool = max(POOL, k)
    if method == "bm25":
        return [(index.chunks[i], s) for i, s in bm25_ranking(index, question, k)]
    dense = dense_ranking(index, question, len(index.chunks) if method == "hybrid" else k)
    if method == "dense":
        return [(index.chunks[i], s) for i, s in dense]
    cosine = dict(dense)
    weights = [BM25_WEIGHT if bm25_weight is None else bm25_weight, 1.0]
    fused = fuse([bm25_ranking(index, question, pool), dense[:pool]], weights, RRF_K if rrf_k is None else rrf_k)[:k]
    return [(index.chunks[i], cosine[i]) for i, _ in fused]

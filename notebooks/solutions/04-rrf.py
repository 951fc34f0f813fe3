# EXERCISE 04-rrf
def my_fuse(rankings, weights, k):
    """Reciprocal-rank fusion: each ranking gives a chunk weight / (k + rank), ranks counted from 1."""
    fused = {}
    for ranking, weight in zip(rankings, weights):
        for rank, (chunk, _score) in enumerate(ranking, start=1):
            fused[chunk] = fused.get(chunk, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: pair[1], reverse=True)

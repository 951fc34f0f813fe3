# EXERCISE 07-top-hit
def top_chunk(query: str) -> int:
    query_vector = embedder.embed([query])[0]  # unit length, like every row of index_vectors
    scores = index_vectors @ query_vector  # one cosine similarity per chunk
    return int(scores.argmax())

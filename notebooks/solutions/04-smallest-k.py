# EXERCISE 04-smallest-k
ranked = {i["id"]: rag.retrieve(i["question"], k=20, index=index) for i in answerable}


def hybrid_recall(k):
    return sum(evaluate.recall_at_k(ranked[i["id"]][:k], i) for i in answerable) / len(answerable)


my_k = next(k for k in range(1, 21) if hybrid_recall(k) >= 0.75)
print(f"k = {my_k}: recall@k = {hybrid_recall(my_k):.2f} (k = {my_k - 1}: {hybrid_recall(my_k - 1):.2f})")

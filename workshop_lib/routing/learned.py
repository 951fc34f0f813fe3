"""A learned router: logistic regression over text features, trained on some items' cached outcomes
and evaluated only on the others (taught in 05_hybrid_routing).

RouteLLM trains on preference data (which model's answer was better); here the label is the same
idea from our own outcomes: 1 when the large model scored higher than the small one on the item.
Plain numpy, so the lesson can show every step: hashed words, a few counts, gradient descent.
"""
import re
import zlib

import numpy as np

DIM = 256


def features(prompt: str, dim: int = DIM) -> np.ndarray:
    """Hashed word counts (``dim`` buckets, crc32 so they are the same on every run and machine),
    plus log length, the share of digits and whether the prompt holds a code fence."""
    words = re.findall(r"[a-z_]+|\d+", prompt.lower())
    x = np.zeros(dim + 3)
    for word in words:
        x[zlib.crc32(word.encode()) % dim] += 1.0
    x[:dim] /= max(1.0, np.sqrt((x[:dim] ** 2).sum()))
    x[dim:] = [np.log1p(len(prompt)) / 8, sum(c.isdigit() for c in prompt) / max(1, len(prompt)) * 10,
               float("```" in prompt)]
    return x


def split(item_ids, tasks, train_fraction: float = 0.5, seed: int = 0):
    """Boolean mask of training items: ``train_fraction`` of each task type, seeded."""
    rng, mask = np.random.default_rng(seed), np.zeros(len(item_ids), bool)
    tasks = np.asarray(tasks)
    for task in np.unique(tasks):
        idx = np.flatnonzero(tasks == task)
        mask[rng.permutation(idx)[:int(round(train_fraction * len(idx)))]] = True
    return mask


class LogisticRouter:
    """``fit(prompts, labels)`` then ``need(prompts)``: the predicted chance the large model does better."""

    def __init__(self, l2: float = 0.01, steps: int = 400, rate: float = 0.5):
        self.l2, self.steps, self.rate = l2, steps, rate
        self.w = self.b = None

    def fit(self, prompts, labels):
        X, y = np.array([features(p) for p in prompts]), np.asarray(labels, float)
        self.w, self.b = np.zeros(X.shape[1]), np.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3))
        for _ in range(self.steps):
            p = 1 / (1 + np.exp(-(X @ self.w + self.b)))
            self.w -= self.rate * (X.T @ (p - y) / len(y) + self.l2 * self.w)
            self.b -= self.rate * (p - y).mean()
        return self

    def need(self, prompts) -> np.ndarray:
        X = np.array([features(p) for p in prompts])
        return 1 / (1 + np.exp(-(X @ self.w + self.b)))
